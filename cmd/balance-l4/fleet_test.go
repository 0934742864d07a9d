package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/balancel4/balance-l4/internal/etcdtest"
)

// The fleet tests run the built binary three times on one real etcd
// cluster of three member processes.

// fleetNode is one balance-l4 instance of a test fleet.
type fleetNode struct {
	id, admin, listen, config string
	proc                      *process
}

// fleetSetup is what every instance of a test fleet shares.
type fleetSetup struct {
	endpoints []string
	name      string
	backends  []net.Listener // echo servers: b0, b1, ...
	extra     string         // more [fleet] lines (TLS, auth)
	env       []string
}

func (s fleetSetup) configFor(t *testing.T, id, admin, listen, stateFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_file = %q\nshutdown_timeout = \"5s\"\n[admin]\nlisten = %q\n", stateFile, admin)
	fmt.Fprintf(&b, "[fleet]\netcd = [%s]\nname = %q\ninstance = %q\nrequest_timeout = \"1s\"\ndial_timeout = \"1s\"\npublish_interval = \"500ms\"\n%s\n",
		quoteList(s.endpoints), s.name, id, s.extra)
	fmt.Fprintf(&b, "[[services]]\nname = \"echo\"\nlisten = %q\n[services.health_check]\ninterval = \"200ms\"\n", listen)
	for i, be := range s.backends {
		fmt.Fprintf(&b, "[[services.backends]]\nname = \"b%d\"\naddress = %q\n", i, be.Addr())
	}
	return writeFile(t, id+".toml", b.String())
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// startNode starts one instance and waits until it serves.
func (s fleetSetup) startNode(t *testing.T, id string) *fleetNode {
	t.Helper()
	n := &fleetNode{id: id, admin: freePort(t), listen: freePort(t)}
	n.config = s.configFor(t, id, n.admin, n.listen, filepath.Join(t.TempDir(), id+"-state.json"))
	n.restart(t, s.env)
	return n
}

func (n *fleetNode) restart(t *testing.T, env []string) {
	t.Helper()
	cmd := exec.Command(binary, "-config", n.config)
	cmd.Env = append(cmd.Environ(), env...)
	n.proc = start(t, cmd)
	waitListening(t, n.admin)
	waitListening(t, n.listen)
}

func (n *fleetNode) stop(t *testing.T) {
	t.Helper()
	n.proc.signal(t, syscall.SIGTERM)
	if code := n.proc.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("%s exited %d", n.id, code)
	}
}

type apiBackend struct {
	State    string
	Weight   int
	Drained  bool
	Diverged *bool
	Fleet    *struct {
		Instances         int
		Draining          int
		ActiveConnections int64 `json:"active_connections"`
		Drained           bool
	}
}

func (n *fleetNode) backend(t *testing.T, name string) apiBackend {
	t.Helper()
	var b apiBackend
	if code := getJSON(n.admin, "/api/v1/services/echo/backends/"+name, &b); code != 200 {
		t.Fatalf("%s: GET backend %s: status %d", n.id, name, code)
	}
	return b
}

type apiFleet struct {
	Connected       bool
	Revision        int64
	InvalidKeys     int64 `json:"invalid_keys"`
	Instances       []struct{ ID string }
	DisconnectedSRC *time.Time `json:"disconnected_since"`
}

func (n *fleetNode) fleet(t *testing.T) apiFleet {
	t.Helper()
	var f apiFleet
	if code := getJSON(n.admin, "/api/v1/fleet", &f); code != 200 {
		t.Fatalf("%s: GET /api/v1/fleet: status %d", n.id, code)
	}
	return f
}

// act posts a drain or undrain (or PUTs a weight when body is set) and
// returns the status and error message.
func (n *fleetNode) act(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.admin+"/api/v1/services/echo/backends/"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &e)
	return resp.StatusCode, e.Error
}

// actRetry repeats a change that answered 503 (etcd unreachable, or the
// outcome unknown) until it answers 200, as the error tells a client to.
func (n *fleetNode) actRetry(t *testing.T, method, path, body string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, msg := n.act(t, method, path, body)
		if code == 200 {
			return
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("%s: %s %s: status %d: %s", n.id, method, path, code, msg)
		}
	}
}

func (n *fleetNode) mustAct(t *testing.T, method, path, body string) {
	t.Helper()
	if code, msg := n.act(t, method, path, body); code != 200 {
		t.Fatalf("%s: %s %s: status %d: %s", n.id, method, path, code, msg)
	}
}

// waitAll waits until cond holds for backend name on every node.
func waitAll(t *testing.T, nodes []*fleetNode, name, what string, cond func(apiBackend) bool) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, n.id+": "+name+" "+what, func() bool { return cond(n.backend(t, name)) })
	}
}

func newFleet(t *testing.T, c *etcdtest.Cluster, backends int) (fleetSetup, []*fleetNode) {
	t.Helper()
	s := fleetSetup{endpoints: c.Endpoints(), name: "test"}
	for range backends {
		s.backends = append(s.backends, startEcho(t))
	}
	var nodes []*fleetNode
	for _, id := range []string{"a", "b", "c"} {
		nodes = append(nodes, s.startNode(t, id))
	}
	waitFor(t, "every instance in the registry", func() bool {
		for _, n := range nodes {
			if len(n.fleet(t).Instances) != 3 {
				return false
			}
		}
		return true
	})
	return s, nodes
}

// TestFleetSharesOperatorState: a change through one instance's API or
// straight in etcd reaches every instance; invalid values change nothing.
func TestFleetSharesOperatorState(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	_, nodes := newFleet(t, c, 2)
	a, b := nodes[0], nodes[1]

	// A drain answered by a is applied by a before it answers, then everywhere.
	a.mustAct(t, "POST", "b0/drain", "")
	if got := a.backend(t, "b0"); got.State != "draining" {
		t.Fatalf("a answered before applying: b0 is %s", got.State)
	}
	waitAll(t, nodes, "b0", "draining", func(b apiBackend) bool { return b.State == "draining" })

	// The fleet-wide view: draining on 3/3 and drained once no instance
	// has a connection left.
	waitAll(t, nodes, "b0", "fleet drained", func(b apiBackend) bool {
		return b.Fleet != nil && b.Fleet.Instances == 3 && b.Fleet.Draining == 3 && b.Fleet.Drained
	})

	// Weight through b, undrain through c.
	b.mustAct(t, "PUT", "b1/weight", `{"weight": 9}`)
	waitAll(t, nodes, "b1", "weight 9", func(b apiBackend) bool { return b.Weight == 9 })
	nodes[2].mustAct(t, "POST", "b0/undrain", "")
	waitAll(t, nodes, "b0", "undrained", func(b apiBackend) bool { return b.State == "healthy" })

	// A direct write of the operator key acts like the API...
	cli := c.Client(t)
	ctx := context.Background()
	key := "/balance-l4/test/operator/echo/b1"
	if _, err := cli.Put(ctx, key, `{"drain": true, "weight": 3, "by": "etcdctl", "at": "2026-12-07T10:00:00Z"}`); err != nil {
		t.Fatal(err)
	}
	waitAll(t, nodes, "b1", "drained by etcdctl, weight 3", func(b apiBackend) bool { return b.State == "draining" && b.Weight == 3 })
	// ...and deleting it is undrained with the file's weight.
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	waitAll(t, nodes, "b1", "undrained, file weight", func(b apiBackend) bool { return b.State == "healthy" && b.Weight == 1 })

	// An invalid value is counted and ignored: b0 stays as it is.
	a.mustAct(t, "POST", "b0/drain", "")
	waitAll(t, nodes, "b0", "draining", func(b apiBackend) bool { return b.State == "draining" })
	for _, bad := range []string{`{"drain": "yes"}`, `not json`, `{"drain": false, "weight": 999}`} {
		if _, err := cli.Put(ctx, "/balance-l4/test/operator/echo/b0", bad); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		waitFor(t, n.id+" counting 3 invalid keys", func() bool { return n.fleet(t).InvalidKeys == 3 })
		if got := n.backend(t, "b0"); got.State != "draining" {
			t.Fatalf("%s: an invalid value changed b0 to %s", n.id, got.State)
		}
	}
	// Keys for a service or backend an instance lacks are ignored.
	if _, err := cli.Put(ctx, "/balance-l4/test/operator/nosuch/b0", `{"drain": true}`); err != nil {
		t.Fatal(err)
	}
	// The API repairs an invalid key by overwriting it.
	a.mustAct(t, "POST", "b0/undrain", "")
	waitAll(t, nodes, "b0", "undrained", func(b apiBackend) bool { return b.State == "healthy" })
}

// TestFleetDrainedWaitsForEveryConnection: the fleet-wide drained turns
// true only when no instance has a connection left to the backend.
func TestFleetDrainedWaitsForEveryConnection(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	_, nodes := newFleet(t, c, 1)
	a, b := nodes[0], nodes[1]
	waitAll(t, nodes, "b0", "healthy", func(b apiBackend) bool { return b.State == "healthy" })

	conn := dial(t, b.listen)
	roundTrip(t, conn, "hello")
	a.mustAct(t, "POST", "b0/drain", "")
	waitAll(t, nodes, "b0", "draining", func(b apiBackend) bool { return b.State == "draining" })
	// a sees b's open connection through the registry.
	waitFor(t, "a sees b's connection", func() bool {
		f := a.backend(t, "b0").Fleet
		return f != nil && f.Draining == 3 && f.ActiveConnections == 1
	})
	if f := a.backend(t, "b0").Fleet; f.Drained {
		t.Fatal("fleet drained while b still has a connection")
	}
	if got := a.backend(t, "b0"); !got.Drained {
		t.Fatal("a alone has no connection: its own drained should be true")
	}
	roundTrip(t, conn, "still served while draining")
	conn.Close()
	waitAll(t, nodes, "b0", "fleet drained", func(b apiBackend) bool { return b.Fleet != nil && b.Fleet.Drained })
}

// TestFleetFaults walks one fleet through etcd's failures: a leader killed
// during a stream of changes, lost quorum, an instance restarted during the
// outage, recovery, and a compaction past an instance's revision.
func TestFleetFaults(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	setup, nodes := newFleet(t, c, 4)
	a := nodes[0]

	// 1. Kill the leader in the middle of 40 changes through every instance.
	// A change answered 503 (outcome unknown) is read back and retried, as
	// the error says; every change converges.
	want := map[string]int{}
	for i := range 40 {
		if i == 10 {
			leader := c.Leader(t)
			if err := c.Kill(leader); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed etcd member %d, the leader", leader)
		}
		n := nodes[i%3]
		be := fmt.Sprintf("b%d", i%4)
		w := i%7 + 1
		want[be] = w
		n.actRetry(t, "PUT", be+"/weight", fmt.Sprintf(`{"weight": %d}`, w))
	}
	for be, w := range want {
		waitAll(t, nodes, be, fmt.Sprintf("weight %d", w), func(b apiBackend) bool { return b.Weight == w })
	}

	// Bring the killed member back before the quorum test.
	for i := range c.Members() {
		if !c.Member(i).Running() {
			if err := c.Restart(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.WaitHealthy(t)

	// 2. Drain b3 fleet-wide, then take away quorum.
	a.mustAct(t, "POST", "b3/drain", "")
	waitAll(t, nodes, "b3", "draining", func(b apiBackend) bool { return b.State == "draining" })
	leader := c.Leader(t)
	var stopped []int
	for i := range c.Members() {
		if i != leader && len(stopped) < 1 {
			stopped = append(stopped, i)
		}
	}
	stopped = append(stopped, leader)
	for _, i := range stopped {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	lost := time.Now()
	for _, n := range nodes {
		waitFor(t, n.id+" seeing etcd unreachable", func() bool { return !n.fleet(t).Connected })
	}
	t.Logf("quorum lost: every instance knew within %v", time.Since(lost).Round(time.Millisecond))
	// Traffic flows on every instance with no error.
	for _, n := range nodes {
		for i := range 20 {
			conn := dial(t, n.listen)
			roundTrip(t, conn, fmt.Sprintf("%s during the outage %d", n.id, i))
			conn.Close()
		}
	}
	// Writes answer 503 at once and change nothing.
	refused := time.Now()
	code, msg := a.act(t, "POST", "b2/drain", "")
	t.Logf("a drain without quorum answered %d in %v", code, time.Since(refused).Round(time.Microsecond))
	if code != 503 || !strings.Contains(msg, "fleet store unreachable") {
		t.Fatalf("drain without quorum: status %d %q, want 503 fleet store unreachable", code, msg)
	}
	if got := a.backend(t, "b2"); got.State == "draining" {
		t.Fatal("a refused drain changed the backend")
	}
	// scope=local works and shows as diverged.
	a.mustAct(t, "POST", "b2/drain?scope=local", "")
	if got := a.backend(t, "b2"); got.State != "draining" || got.Diverged == nil || !*got.Diverged {
		t.Fatalf("after a local drain b2 = %+v, want draining and diverged", got)
	}
	// The dashboard says so.
	resp, err := http.Get("http://" + a.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "unreachable") {
		t.Fatal("the dashboard shows no fleet store banner during the outage")
	}

	// 3. Restart an instance during the outage: it starts with the fleet's
	// drain from its state file.
	nodes[2].stop(t)
	nodes[2].restart(t, setup.env)
	if got := nodes[2].backend(t, "b3"); got.State != "draining" {
		t.Fatalf("restarted during the outage, b3 is %s; want draining from the state file", got.State)
	}
	for i := range 5 {
		conn := dial(t, nodes[2].listen)
		roundTrip(t, conn, fmt.Sprintf("restarted instance %d", i))
		conn.Close()
	}

	// 4. etcd back: everyone reconnects and agrees; the local change holds
	// until a fleet-wide change to b2 replaces it.
	for _, i := range stopped {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitHealthy(t)
	back := time.Now()
	for _, n := range nodes {
		waitFor(t, n.id+" reconnected", func() bool { return n.fleet(t).Connected })
	}
	waitFor(t, "all three in the registry again", func() bool { return len(a.fleet(t).Instances) == 3 })
	t.Logf("quorum back: every instance connected and registered %v later", time.Since(back).Round(time.Millisecond))
	if got := a.backend(t, "b2"); got.State != "draining" || !*got.Diverged {
		t.Fatalf("after recovery b2 on a = %+v; want still draining and diverged", got)
	}
	nodes[1].actRetry(t, "POST", "b2/undrain", "")
	waitAll(t, nodes, "b2", "undrained fleet-wide", func(b apiBackend) bool {
		return b.State == "healthy" && b.Diverged != nil && !*b.Diverged
	})

	// 5. Compact past an instance's revision while it cannot see etcd.
	// Instance c uses member 0 alone; pausing that member leaves c behind
	// while a and b change things through the other two.
	lone := setup
	lone.endpoints = []string{c.Member(0).Endpoint()}
	if c.Leader(t) == 0 {
		// Move leadership off member 0 by restarting it.
		c.Stop(0)
		c.Restart(0)
		c.WaitHealthy(t)
	}
	nodes[2].stop(t)
	nodes[2].config = lone.configFor(t, "c", nodes[2].admin, nodes[2].listen, filepath.Join(t.TempDir(), "c-state.json"))
	nodes[2].restart(t, setup.env)
	waitFor(t, "c connected", func() bool { return nodes[2].fleet(t).Connected })
	before := nodes[2].fleet(t).Revision
	pid := c.Member(0).PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	a.actRetry(t, "POST", "b1/drain", "")
	nodes[1].actRetry(t, "PUT", "b0/weight", `{"weight": 4}`)
	compacted := compactWithout(t, c, 0)
	if compacted <= before {
		t.Fatalf("compacted at %d, not past c's revision %d", compacted, before)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c resynchronised past the compaction", func() bool {
		f := nodes[2].fleet(t)
		return f.Connected && f.Revision >= compacted
	})
	waitAll(t, nodes, "b1", "draining", func(b apiBackend) bool { return b.State == "draining" })
	waitAll(t, nodes, "b0", "weight 4", func(b apiBackend) bool { return b.Weight == 4 })
}

// TestFleetPropagation measures how long a change through one instance takes
// to be applied by the other two, over 100 changes. It reports figures and
// asserts only that every change arrives.
func TestFleetPropagation(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	_, nodes := newFleet(t, c, 1)
	var lat []time.Duration
	for i := range 100 {
		src := nodes[i%3]
		w := i%200 + 1
		start := time.Now()
		src.mustAct(t, "PUT", "b0/weight", fmt.Sprintf(`{"weight": %d}`, w))
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, n := range nodes {
			if n == src {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
					var b apiBackend
					if getJSON(n.admin, "/api/v1/services/echo/backends/b0", &b) == 200 && b.Weight == w {
						mu.Lock()
						lat = append(lat, time.Since(start))
						mu.Unlock()
						return
					}
					time.Sleep(time.Millisecond)
				}
				t.Errorf("%s never applied weight %d", n.id, w)
			}()
		}
		wg.Wait()
	}
	slices.Sort(lat)
	t.Logf("propagation over %d applications (100 changes x 2 other instances): p50 %v, p99 %v, max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// compactWithout compacts etcd to its current revision through every member
// but one (which may be paused).
func compactWithout(t *testing.T, c *etcdtest.Cluster, skip int) int64 {
	t.Helper()
	cc := c.ClientConfig(t)
	cc.Endpoints = nil
	for i := range c.Members() {
		if i != skip {
			cc.Endpoints = append(cc.Endpoints, c.Member(i).Endpoint())
		}
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "compaction-probe")
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestFleetTLSAndAuth: etcd over TLS with a client certificate and a user.
// Right credentials join the fleet; a wrong password or an untrusted
// certificate is a clear error naming the endpoint, while the instance
// serves traffic and keeps retrying.
func TestFleetTLSAndAuth(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{TLS: true, Auth: true})
	be := startEcho(t)
	base := fleetSetup{endpoints: c.Endpoints(), name: "secure", backends: []net.Listener{be},
		extra: fmt.Sprintf("username = %q\ntls_ca = %q\ntls_cert = %q\ntls_key = %q\n",
			etcdtest.BalanceUser, c.CAFile, c.CertFile, c.KeyFile),
		env: []string{"BALANCE_ETCD_PASSWORD=" + etcdtest.BalancePassword}}

	good := base.startNode(t, "good")
	waitFor(t, "good connected", func() bool { return good.fleet(t).Connected })
	good.mustAct(t, "POST", "b0/drain", "")
	cli := c.Client(t)
	resp, err := cli.Get(context.Background(), "/balance-l4/secure/operator/echo/b0")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"drain":true`) {
		t.Fatalf("drain through TLS and auth not in etcd: %v %v", resp, err)
	}

	wrongPass := base
	wrongPass.env = []string{"BALANCE_ETCD_PASSWORD=not-the-password"}
	bad := wrongPass.startNode(t, "wrong-password")
	untrusted := base
	cert, key := c.UntrustedClientCert(t)
	untrusted.extra = fmt.Sprintf("username = %q\ntls_ca = %q\ntls_cert = %q\ntls_key = %q\n",
		etcdtest.BalanceUser, c.CAFile, cert, key)
	badCert := untrusted.startNode(t, "untrusted-cert")

	for _, tc := range []struct {
		n    *fleetNode
		says string
	}{{bad, "authentication failed"}, {badCert, "TLS"}} {
		waitFor(t, tc.n.id+" logging a clear error", func() bool {
			log := tc.n.proc.stderr()
			return strings.Contains(log, tc.says) && strings.Contains(log, c.Member(0).Endpoint())
		})
		if f := tc.n.fleet(t); f.Connected {
			t.Fatalf("%s: connected with bad credentials", tc.n.id)
		}
		// It serves traffic all the same.
		conn := dial(t, tc.n.listen)
		roundTrip(t, conn, tc.n.id+" serves")
		conn.Close()
		if code, msg := tc.n.act(t, "POST", "b0/drain", ""); code != 503 {
			t.Fatalf("%s: drain answered %d %s, want 503", tc.n.id, code, msg)
		}
	}
}
