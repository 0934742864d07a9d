// Package etcdtest runs a real etcd cluster for tests: three members (by
// default) on loopback, each its own OS process, running the etcd server
// that tools/etcd builds from etcd's Go module (see Binary).
//
// Real etcd, not a mock: the fleet relies on etcd's semantics (linearizable
// reads, revisions, leases, compaction, auth, TLS), which a mock would only
// imitate. Processes, not etcd's embed package: the fleet tests kill, stop
// and restart members, and a SIGKILLed process is the crash the fleet must
// survive; an embedded server can only be closed cleanly, shares the test's
// address space, and would bring the server's dependencies into this module.
//
//	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
//	cli := c.Client(t)
//	c.Kill(c.Leader(t))
//	c.WaitHealthy(t)
//
// Members elect quickly (50 ms heartbeats, 500 ms election timeout), log
// errors only, to a file whose end a failure prints, skip fsync (a killed
// process loses no written data; only a machine crash would), and are
// stopped when the test ends. They die with the test process (Pdeathsig).
// Their ports lie below the kernel's ephemeral range, so no outgoing
// connection takes one while its member is down. Peers talk plain HTTP
// even with Options.TLS, which is for clients.
package etcdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The users of a cluster started with Options.Auth.
const (
	RootUser        = "root"
	RootPassword    = "root-secret"
	BalanceUser     = "balance"        // may read and write BalancePrefix only
	BalancePassword = "balance-secret" // BalanceUser's password
	BalancePrefix   = "/balance-l4/"   // the keys BalanceUser may use
	balanceRole     = BalanceUser      // BalanceUser's role
)

// healthKey is what health checks read.
const healthKey = "/etcdtest/health"

// Bounds on waiting for etcd.
const (
	startTimeout   = 30 * time.Second // until a new cluster answers
	healthyTimeout = 30 * time.Second // WaitHealthy
	leaderTimeout  = 10 * time.Second // Leader
	listenTimeout  = 10 * time.Second // Restart, until the client port accepts
	stopTimeout    = 10 * time.Second // SIGTERM to SIGKILL
	requestTimeout = 10 * time.Second // one setup request
	dialTimeout    = 5 * time.Second
)

// Options shape a cluster.
type Options struct {
	Members int      // members; 3 when 0
	TLS     bool     // clients must use TLS and a certificate from CAFile's CA
	Auth    bool     // auth on, with users RootUser and BalanceUser
	Args    []string // more etcd flags for every member
}

// Cluster is a running etcd cluster. Its members keep their ports and data
// directories for its whole life, so a member restarts as itself.
type Cluster struct {
	// The client's TLS files, with Options.TLS; "" without.
	CAFile, CertFile, KeyFile string
	// The credentials Client uses, RootUser's, with Options.Auth; "" without.
	Username, Password string
	// Dir holds the members' data directories and logs.
	Dir string

	opts    Options
	bin     string
	tls     *tlsFiles
	token   string // --initial-cluster-token
	initial string // --initial-cluster
	members []*Member
	admin   *clientv3.Client // for Leader and Compact
}

// Member is one etcd process of a cluster.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:port, https:// with TLS
	PeerURL   string
	DataDir   string
	LogFile   string // its stderr, kept across restarts

	c  *Cluster
	mu sync.Mutex
	p  *process // nil while not running
}

// process is one run of a member.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's
}

// errPortTaken: a member could not listen on its port; another one may do.
var errPortTaken = errors.New("port taken")

// Start starts a cluster, waits until it serves linearizable reads (and, with
// Options.Auth, sets up its users), and stops it when tb ends.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Members <= 0 {
		opts.Members = 3
	}
	c := &Cluster{Dir: tb.TempDir(), opts: opts, bin: Binary(tb)}
	if opts.TLS {
		f := makeTLS(tb, filepath.Join(c.Dir, "tls"))
		c.tls = f
		c.CAFile, c.CertFile, c.KeyFile = f.ca, f.clientCert, f.clientKey
	}
	tb.Cleanup(func() {
		for _, err := range c.stopAll() {
			tb.Error(err)
		}
	})
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = c.boot(attempt); !errors.Is(err, errPortTaken) {
			break
		}
		tb.Logf("etcdtest: %v; retrying on other ports", err)
		c.stopAll()
	}
	if err != nil {
		tb.Fatalf("starting etcd: %v\n%s", err, c.logs())
	}
	if opts.Auth {
		if err := c.enableAuth(); err != nil {
			tb.Fatalf("setting up etcd auth: %v\n%s", err, c.logs())
		}
	}
	cfg, err := c.clientConfig(c.Endpoints())
	if err != nil {
		tb.Fatal(err)
	}
	if c.admin, err = clientv3.New(cfg); err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { c.admin.Close() }) // before the members stop
	return c
}

// boot makes fresh members on new ports and starts them as a new cluster.
func (c *Cluster) boot(attempt int) error {
	var random [6]byte
	_, _ = rand.Read(random[:])
	c.token = fmt.Sprintf("etcdtest-%d-%s", os.Getpid(), hex.EncodeToString(random[:]))
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
	}
	c.members = nil
	var initial []string
	for i := range c.opts.Members {
		clientPort, err := freePort()
		if err != nil {
			return err
		}
		peerPort, err := freePort()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("member%d", i)
		m := &Member{
			Name:      name,
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, clientPort),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", peerPort),
			DataDir:   filepath.Join(c.Dir, fmt.Sprintf("%s.try%d", name, attempt)),
			LogFile:   filepath.Join(c.Dir, name+".log"),
			c:         c,
		}
		c.members = append(c.members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	err := c.startNew()
	for _, m := range c.members {
		if err != nil && strings.Contains(m.Log(), "address already in use") {
			return fmt.Errorf("%s: %w: %v", m.Name, errPortTaken, err)
		}
	}
	return err
}

// startNew starts the members of a new cluster and waits until it serves.
func (c *Cluster) startNew() error {
	// One after the other: a new member first asks its peers whether it
	// was bootstrapped already, and a peer that listens but does not serve
	// yet (it is asking too) holds each question for a second.
	for _, m := range c.members {
		if err := m.start("new"); err != nil {
			return err
		}
		if err := m.waitPeer(); err != nil {
			return err
		}
	}
	return c.waitHealthy(startTimeout)
}

// enableAuth adds RootUser and BalanceUser and turns auth on.
func (c *Cluster) enableAuth() error {
	cfg, err := c.clientConfig(c.Endpoints())
	if err != nil {
		return err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	steps := []struct {
		what string
		do   func() error
	}{
		{"adding " + RootUser, func() error { _, err := cli.UserAdd(ctx, RootUser, RootPassword); return err }},
		{"granting root", func() error { _, err := cli.UserGrantRole(ctx, RootUser, "root"); return err }},
		{"adding role " + balanceRole, func() error { _, err := cli.RoleAdd(ctx, balanceRole); return err }},
		{"granting " + BalancePrefix, func() error {
			_, err := cli.RoleGrantPermission(ctx, balanceRole, BalancePrefix,
				clientv3.GetPrefixRangeEnd(BalancePrefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"adding " + BalanceUser, func() error { _, err := cli.UserAdd(ctx, BalanceUser, BalancePassword); return err }},
		{"granting " + balanceRole, func() error { _, err := cli.UserGrantRole(ctx, BalanceUser, balanceRole); return err }},
		{"enabling auth", func() error { _, err := cli.AuthEnable(ctx); return err }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	c.Username, c.Password = RootUser, RootPassword
	return nil
}

// Endpoints returns the client URLs of all members, running or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.ClientURL
	}
	return eps
}

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Members returns the number of members.
func (c *Cluster) Members() int { return len(c.members) }

// ClientConfig returns the configuration of a client to all members, with
// the cluster's TLS files and credentials, for tests that need their own.
func (c *Cluster) ClientConfig(tb testing.TB) clientv3.Config {
	tb.Helper()
	cfg, err := c.clientConfig(c.Endpoints())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func (c *Cluster) clientConfig(endpoints []string) (clientv3.Config, error) {
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: dialTimeout,
		Username:    c.Username,
		Password:    c.Password,
		Logger:      zap.NewNop(), // its own retries of down members are noise
	}
	if c.tls != nil {
		var err error
		if cfg.TLS, err = clientTLS(c.CAFile, c.CertFile, c.KeyFile); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Client returns a client to all members, closed when tb ends. With Auth it
// is RootUser's, and creating it needs a quorum (it authenticates).
func (c *Cluster) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(c.ClientConfig(tb))
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that leads, waiting for an
// election if there is none.
func (c *Cluster) Leader(tb testing.TB) int {
	tb.Helper()
	deadline := time.Now().Add(leaderTimeout)
	for {
		leader, term := -1, uint64(0)
		for i, m := range c.members {
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.admin.Status(ctx, m.ClientURL)
			cancel()
			// A stale leader of an older term may not know yet.
			if err == nil && st.Leader == st.Header.MemberId && st.RaftTerm >= term {
				leader, term = i, st.RaftTerm
			}
		}
		if leader >= 0 {
			return leader
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no etcd leader after %s\n%s", leaderTimeout, c.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Compact compacts the keyspace to the current revision, physically, and
// returns that revision.
func (c *Cluster) Compact(tb testing.TB) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := c.admin.Get(ctx, healthKey)
	if err != nil {
		tb.Fatalf("etcd revision: %v", err)
	}
	rev := resp.Header.Revision
	_, err = c.admin.Compact(ctx, rev, clientv3.WithCompactPhysical())
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) { // compacted there already
		tb.Fatalf("compacting etcd to %d: %v", rev, err)
	}
	return rev
}

// WaitHealthy waits until every running member serves a linearizable read:
// there is a quorum and restarted members have caught up.
func (c *Cluster) WaitHealthy(tb testing.TB) {
	tb.Helper()
	if err := c.waitHealthy(healthyTimeout); err != nil {
		tb.Fatalf("etcd not healthy: %v\n%s", err, c.logs())
	}
}

func (c *Cluster) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, m := range c.members {
		for {
			exited, err := m.exited()
			if !m.Running() {
				break
			} else if exited {
				return fmt.Errorf("%s exited: %v", m.Name, err)
			}
			// A client that dials before the port is open backs off for
			// a second: wait for the listener first.
			if err = m.dial(); err == nil {
				err = m.ping()
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not serving after %s: %w", m.Name, timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Kill kills member i (SIGKILL) and waits for it to end.
func (c *Cluster) Kill(i int) error { return c.members[i].halt(syscall.SIGKILL) }

// Stop stops member i (SIGTERM, SIGKILL after 10 s) and waits for it to end.
func (c *Cluster) Stop(i int) error { return c.members[i].halt(syscall.SIGTERM) }

// Restart starts stopped member i again, as itself: same ports, same data.
// It returns once the member listens; WaitHealthy waits for it to serve.
func (c *Cluster) Restart(i int) error {
	m := c.members[i]
	if err := m.start("existing"); err != nil {
		return err
	}
	for deadline := time.Now().Add(listenTimeout); ; {
		if exited, err := m.exited(); exited {
			return fmt.Errorf("restarting %s: exited: %v\n%s", m.Name, err, m.Log())
		}
		err := m.dial()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("restarting %s: not listening after %s: %w\n%s", m.Name, listenTimeout, err, m.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopAll stops the running members (SIGTERM) and returns what went wrong,
// including members that had died by themselves. A stopping leader hands
// leadership over, and waits 5 s for that when the others stop too: once
// only one member is left, it is killed.
func (c *Cluster) stopAll() []error {
	var errs []error
	type stopping struct {
		m *Member
		p *process
	}
	var all []stopping
	for _, m := range c.members {
		m.mu.Lock()
		p := m.p
		m.p = nil
		m.mu.Unlock()
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			errs = append(errs, fmt.Errorf("etcd %s had exited by itself: %v\n%s", m.Name, p.err, m.Log()))
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		all = append(all, stopping{m, p})
	}
	for deadline := time.Now().Add(stopTimeout); ; time.Sleep(10 * time.Millisecond) {
		var left []stopping
		for _, s := range all {
			select {
			case <-s.p.exited:
			default:
				left = append(left, s)
			}
		}
		lone := len(left) == 1 && len(all) > 1
		late := time.Now().After(deadline)
		if len(left) == 0 || lone || late {
			for _, s := range left {
				_ = s.p.cmd.Process.Kill()
				<-s.p.exited
				if late {
					errs = append(errs, fmt.Errorf("stopping etcd %s: killed after %s\n%s", s.m.Name, stopTimeout, s.m.Log()))
				}
			}
			return errs
		}
	}
}

// logs returns the end of every member's log.
func (c *Cluster) logs() string {
	var b strings.Builder
	for _, m := range c.members {
		fmt.Fprintf(&b, "--- %s (%s) log:\n%s\n", m.Name, m.LogFile, m.Log())
	}
	return b.String()
}

// Endpoint returns the member's client URL.
func (m *Member) Endpoint() string { return m.ClientURL }

// Running reports whether the member's process was started and not stopped
// (it may have died by itself).
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p != nil
}

// PID returns the member's process ID, 0 when it is not running.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil {
		return 0
	}
	return m.p.cmd.Process.Pid
}

// Log returns the end of the member's log.
func (m *Member) Log() string {
	b, err := os.ReadFile(m.LogFile)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// exited reports whether the running process has ended, and how.
func (m *Member) exited() (bool, error) {
	m.mu.Lock()
	p := m.p
	m.mu.Unlock()
	if p == nil {
		return false, nil
	}
	select {
	case <-p.exited:
		return true, p.err
	default:
		return false, nil
	}
}

// start starts the member's process, state "new" or "existing".
func (m *Member) start(state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil {
		return fmt.Errorf("etcd %s is running already", m.Name)
	}
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", m.c.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", m.c.token,
		"--heartbeat-interval", "50", // milliseconds, a bare number
		"--election-timeout", "500",
		"--log-level", "error",
		"--log-outputs", "stderr",
		"--unsafe-no-fsync",
	}
	if t := m.c.tls; t != nil {
		args = append(args, "--cert-file", t.serverCert, "--key-file", t.serverKey,
			"--trusted-ca-file", t.ca, "--client-cert-auth")
	}
	args = append(args, m.c.opts.Args...)

	logFile, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the log of etcd %s: %w", m.Name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== etcdtest %s: %s %s\n", time.Now().Format(time.RFC3339Nano), m.c.bin, strings.Join(args, " "))
	cmd := exec.Command(m.c.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile // *os.File: no copying goroutines
	cmd.Env = etcdEnv()
	// Own process group, so a terminal's ^C goes to the test alone, and
	// killed if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd %s: %w", m.Name, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	m.p = p
	return nil
}

// halt signals the member's process and waits for it to end; after
// SIGTERM it kills it if it has not ended within stopTimeout.
func (m *Member) halt(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.p
	if p == nil {
		return nil
	}
	m.p = nil
	// os.Process signals through a pidfd: never a reused PID.
	_ = p.cmd.Process.Signal(sig)
	var err error
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("stopping etcd %s (pid %d): killed after %s\n%s", m.Name, p.cmd.Process.Pid, stopTimeout, m.Log())
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	return err
}

// waitPeer waits until the member serves its peers.
func (m *Member) waitPeer() error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	var err error
	for deadline := time.Now().Add(listenTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if exited, werr := m.exited(); exited {
			return fmt.Errorf("%s exited: %v", m.Name, werr)
		}
		var resp *http.Response
		if resp, err = hc.Get(m.PeerURL + "/version"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /version: %s", resp.Status)
		}
	}
	return fmt.Errorf("%s not serving its peers after %s: %w", m.Name, listenTimeout, err)
}

// dial checks that the member's client port accepts connections.
func (m *Member) dial() error {
	u, err := url.Parse(m.ClientURL)
	if err != nil {
		return err
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// ping reads healthKey linearizably through the member alone.
func (m *Member) ping() error {
	cfg, err := m.c.clientConfig([]string{m.ClientURL})
	if err != nil {
		return err
	}
	cfg.DialTimeout = 2 * time.Second
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = cli.Get(ctx, healthKey)
	return err
}

// etcdEnv is the test's environment without ETCD_ variables, which etcd
// would read as flags.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// The ports handed out by this process.
var ports struct {
	sync.Mutex
	used map[int]bool
}

// freePort returns a loopback port nobody listens on, below the kernel's
// ephemeral range when it can: there no outgoing connection takes it while
// a member is down between Kill and Restart.
func freePort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	lo, hi := 0, ephemeralLow()-1
	if hi > 20000 {
		lo = hi - 10000
	}
	for range 100 {
		port := 0 // the kernel's choice
		if lo > 0 {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)))
			port = lo + int(n.Int64())
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			if lo > 0 {
				continue
			}
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports.used[port] {
			ports.used[port] = true
			return port, nil
		}
	}
	return 0, errors.New("finding a free port: none after 100 tries")
}

// ephemeralLow is the start of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
