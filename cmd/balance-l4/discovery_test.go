package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/balancel4/balance-l4/internal/etcdtest"
	"github.com/balancel4/balance-l4/internal/testservers"
)

// dnsmasq is Debian's DNS server, run by the test on a free loopback port
// with names from a hosts file it re-reads on SIGHUP.
type dnsmasq struct {
	addr, hosts string
	extra       []string
	cmd         *exec.Cmd
	exited      chan struct{}
	started     bool // once: a restart keeps the port
}

func startDnsmasq(t *testing.T, hosts string, extra ...string) *dnsmasq {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		if _, err := os.Stat("/usr/sbin/dnsmasq"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("dnsmasq not installed: .ci/run installs dnsmasq-base")
			}
			t.Skip("dnsmasq not installed (bash .ci/run installs dnsmasq-base)")
		}
	}
	d := &dnsmasq{hosts: filepath.Join(t.TempDir(), "hosts"), extra: extra}
	if err := os.WriteFile(d.hosts, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	d.addr = freeUDP(t)
	d.start(t)
	t.Cleanup(func() { d.stop() })
	return d
}

func (d *dnsmasq) start(t *testing.T) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		err := d.try()
		if err == nil {
			return
		}
		// A port free for UDP may be taken for TCP: a first start picks
		// another; a restart must keep its port.
		if d.started || attempt == 4 {
			t.Fatalf("dnsmasq: %v", err)
		}
		d.addr = freeUDP(t)
	}
}

// try starts dnsmasq on d.addr and waits until it answers over TCP.
func (d *dnsmasq) try() error {
	_, port, _ := net.SplitHostPort(d.addr)
	args := append([]string{"-k", "--port=" + port, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--addn-hosts=" + d.hosts, "--local=/test/", "--user=root", "--group=root",
		"--pid-file=", "--log-facility=-"}, d.extra...)
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin = "/usr/sbin/dnsmasq"
	}
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("exited at start on %s: %s", d.addr, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", d.addr, 200*time.Millisecond); err == nil {
			c.Close()
			d.cmd, d.exited, d.started = cmd, exited, true
			return nil
		}
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("no answer on %s within 10 s: %s", d.addr, out.String())
}

func (d *dnsmasq) stop() {
	if d.cmd != nil {
		d.cmd.Process.Kill()
		<-d.exited
		d.cmd = nil
	}
}

func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

type syncBuffer = testservers.SyncBuffer

// setHosts rewrites the hosts file and has dnsmasq read it again.
func (d *dnsmasq) setHosts(t *testing.T, hosts string) {
	t.Helper()
	if err := os.WriteFile(d.hosts, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// countingEcho is an echo server that counts the connections it accepted.
type countingEcho struct {
	ln    net.Listener
	count atomic.Int64
}

func startCountingEcho(t *testing.T, addr string) (*countingEcho, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	e := &countingEcho{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.count.Add(1)
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return e, nil
}

// echoesOnLoopbacks starts an echo server on one port of 127.0.0.1,
// 127.0.0.2 and 127.0.0.3: three backends behind one DNS name.
func echoesOnLoopbacks(t *testing.T) (port string, es []*countingEcho) {
	t.Helper()
	for range 20 {
		first, err := startCountingEcho(t, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(first.ln.Addr().String())
		es = []*countingEcho{first}
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			e, err := startCountingEcho(t, net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			es = append(es, e)
		}
		if len(es) == 3 {
			return port, es
		}
		for _, e := range es {
			e.ln.Close()
		}
	}
	t.Fatal("no port free on 127.0.0.1, .2 and .3")
	return "", nil
}

type apiService struct {
	Backends []struct {
		Name, Address, State string
		Eligible             bool
	}
	Discovery []struct {
		Type, Name  string
		Backends    int
		Errors      int64
		LastError   string     `json:"last_error"`
		LastSuccess *time.Time `json:"last_success"`
	}
}

func service(t *testing.T, admin string) apiService {
	t.Helper()
	var s apiService
	if code := getJSON(admin, "/api/v1/services/echo", &s); code != 200 {
		t.Fatalf("GET service: %d", code)
	}
	return s
}

func eligibleNames(s apiService) []string {
	var out []string
	for _, b := range s.Backends {
		if b.Eligible {
			out = append(out, b.Name)
		}
	}
	slices.Sort(out)
	return out
}

func backendNames(s apiService) []string {
	var out []string
	for _, b := range s.Backends {
		out = append(out, b.Name)
	}
	slices.Sort(out)
	return out
}

// exchange opens n connections through the balancer, each with one round
// trip, and fails on any error: clients see none while a backend is healthy.
func exchange(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		c := dial(t, addr)
		roundTrip(t, c, fmt.Sprintf("hello %d", i))
		c.Close()
	}
}

// startDiscovering runs the binary with one service "echo", checked every
// 100 ms, whose backends come from one discovery block (its keys given).
func startDiscovering(t *testing.T, discovery string) (admin, listen string, p *process) {
	t.Helper()
	admin, listen = freePort(t), freePort(t)
	cfg := writeFile(t, "discovery.toml", fmt.Sprintf(`
[admin]
listen = %q
[[services]]
name = "echo"
listen = %q
[services.health_check]
interval = "100ms"
healthy_threshold = 1
[[services.discovery]]
%s`, admin, listen, discovery))
	p = startProcess(t, "-config", cfg)
	waitListening(t, admin)
	return admin, listen, p
}

// TestDNSDiscovery runs the binary with a service whose backends are the A
// records of one name in a real dnsmasq: they scale up and down with the
// records, leave only after hold, and survive a dead resolver and an empty
// answer (for hold), with no client error.
func TestDNSDiscovery(t *testing.T) {
	port, es := echoesOnLoopbacks(t)
	dm := startDnsmasq(t, "127.0.0.1 echo.test\n127.0.0.2 echo.test\n")
	admin, listen, proc := startDiscovering(t, fmt.Sprintf("name = %q\nresolver = %q\ninterval = \"100ms\"\nhold = \"1500ms\"\n",
		"echo.test:"+port, dm.addr))
	b := func(ip string) string { return ip + ":" + port }

	waitFor(t, "two discovered backends eligible", func() bool {
		return slices.Equal(eligibleNames(service(t, admin)), []string{b("127.0.0.1"), b("127.0.0.2")})
	})
	exchange(t, listen, 20)
	if es[0].count.Load() == 0 || es[1].count.Load() == 0 {
		t.Fatalf("traffic did not reach both: %d, %d", es[0].count.Load(), es[1].count.Load())
	}

	// Scale up: a record added appears and takes traffic after its check.
	dm.setHosts(t, "127.0.0.1 echo.test\n127.0.0.2 echo.test\n127.0.0.3 echo.test\n")
	waitFor(t, "the third backend eligible", func() bool { return len(eligibleNames(service(t, admin))) == 3 })
	exchange(t, listen, 30)
	if es[2].count.Load() == 0 {
		t.Fatal("the added backend took no traffic")
	}

	// A reload with the discovery block unchanged keeps the discovered
	// backends and their state (here a drain).
	if code := postJSON(admin, "/api/v1/services/echo/backends/"+b("127.0.0.3")+"/drain", ""); code != 200 {
		t.Fatalf("draining a discovered backend: %d", code)
	}
	proc.signal(t, syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(proc.stderr(), "configuration reloaded") })
	var drained struct{ State string }
	if getJSON(admin, "/api/v1/services/echo/backends/"+b("127.0.0.3"), &drained); drained.State != "draining" {
		t.Fatalf("after a reload the discovered backend is %q, want draining", drained.State)
	}
	if got := backendNames(service(t, admin)); len(got) != 3 {
		t.Fatalf("a reload changed the discovered set: %v", got)
	}
	postJSON(admin, "/api/v1/services/echo/backends/"+b("127.0.0.3")+"/undrain", "")

	// Scale down with a connection established on the leaving backend.
	var held net.Conn
	for i := 0; held == nil && i < 100; i++ {
		before := es[1].count.Load()
		c := dial(t, listen)
		roundTrip(t, c, "find .2")
		if es[1].count.Load() > before {
			held = c
		} else {
			c.Close()
		}
	}
	if held == nil {
		t.Fatal("no connection landed on 127.0.0.2")
	}
	dm.setHosts(t, "127.0.0.1 echo.test\n127.0.0.3 echo.test\n")
	waitFor(t, "127.0.0.2 gone after hold", func() bool {
		return !slices.Contains(backendNames(service(t, admin)), b("127.0.0.2"))
	})
	roundTrip(t, held, "still served after its backend left")
	held.Close()

	// The resolver dies: the pool stays, errors are counted and shown.
	dm.stop()
	waitFor(t, "lookup errors counted", func() bool {
		d := service(t, admin).Discovery
		return len(d) == 1 && d[0].Errors >= 3 && d[0].LastError != ""
	})
	if got := backendNames(service(t, admin)); !slices.Equal(got, []string{b("127.0.0.1"), b("127.0.0.3")}) {
		t.Fatalf("a dead resolver changed the pool: %v", got)
	}
	exchange(t, listen, 10)

	// Back with an empty answer (NXDOMAIN): nothing leaves before hold...
	os.WriteFile(dm.hosts, nil, 0o644)
	dm.start(t)
	waitFor(t, "an answer after the outage", func() bool {
		d := service(t, admin).Discovery
		return len(d) == 1 && d[0].Backends == 2 && d[0].LastSuccess != nil && time.Since(*d[0].LastSuccess) < 300*time.Millisecond
	})
	if got := backendNames(service(t, admin)); len(got) != 2 {
		t.Fatalf("an empty answer emptied the pool at once: %v", got)
	}
	exchange(t, listen, 5)
	// ...and then the pool is empty, as the records say.
	waitFor(t, "the pool empty after hold", func() bool { return len(backendNames(service(t, admin))) == 0 })
}

// TestSRVDiscoveryWithDnsmasq: an SRV name in dnsmasq gives backends named
// target:port, with the lower priority as primaries.
func TestSRVDiscoveryWithDnsmasq(t *testing.T) {
	port, _ := echoesOnLoopbacks(t)
	dm := startDnsmasq(t, "127.0.0.1 one.test\n127.0.0.2 two.test\n",
		"--srv-host=_echo._tcp.test,one.test,"+port+",0,10", "--srv-host=_echo._tcp.test,two.test,"+port+",5,10")
	admin, listen, _ := startDiscovering(t, fmt.Sprintf("name = \"_echo._tcp.test\"\nresolver = %q\ninterval = \"100ms\"\n", dm.addr))
	var got struct {
		Backends []struct {
			Name, Address string
			Backup        bool
			Events        []struct{ To, Reason string }
		}
	}
	waitFor(t, "two SRV backends", func() bool {
		return getJSON(admin, "/api/v1/services/echo", &got) == 200 && len(got.Backends) == 2
	})
	slices.SortFunc(got.Backends, func(a, b struct {
		Name, Address string
		Backup        bool
		Events        []struct{ To, Reason string }
	}) int {
		return strings.Compare(a.Name, b.Name)
	})
	one, two := got.Backends[0], got.Backends[1]
	if one.Name != "one.test:"+port || one.Address != "127.0.0.1:"+port || one.Backup ||
		two.Name != "two.test:"+port || two.Address != "127.0.0.2:"+port || !two.Backup {
		t.Fatalf("SRV backends = %+v", got.Backends)
	}
	if !slices.ContainsFunc(one.Events, func(e struct{ To, Reason string }) bool {
		return e.To == "discovered" && strings.Contains(e.Reason, "_echo._tcp.test")
	}) {
		t.Fatalf("no discovery event in %+v", one.Events)
	}
	waitFor(t, "the primary eligible", func() bool { return slices.Contains(eligibleNames(service(t, admin)), "one.test:"+port) })
	exchange(t, listen, 5)
}

// TestEtcdMembers: backends that register themselves in etcd with a lease
// join the pool, leave with their key, and stay while etcd is down.
func TestEtcdMembers(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	e1, e2 := startEcho(t), startEcho(t)
	admin, listen := freePort(t), freePort(t)
	cfg := writeFile(t, "members.toml", fmt.Sprintf(`
[admin]
listen = %q
[fleet]
etcd = [%s]
name = "m"
instance = "one"
request_timeout = "1s"
dial_timeout = "1s"
[[services]]
name = "echo"
listen = %q
[services.health_check]
interval = "100ms"
healthy_threshold = 1
[[services.discovery]]
type = "etcd"
weight = 2
`, admin, quoteList(c.Endpoints()), listen))
	startProcess(t, "-config", cfg)
	waitListening(t, admin)

	cli := c.Client(t)
	ctx := context.Background()
	lease, err := cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name, value string, opts ...clientv3.OpOption) {
		t.Helper()
		if _, err := cli.Put(ctx, "/balance-l4/m/members/echo/"+name, value, opts...); err != nil {
			t.Fatal(err)
		}
	}
	put("e1", fmt.Sprintf(`{"address": %q}`, e1.Addr()), clientv3.WithLease(lease.ID))
	put("e2", fmt.Sprintf(`{"address": %q, "weight": 7}`, e2.Addr()))
	put("bad", `{"address": "no-port"}`)
	waitFor(t, "two members eligible", func() bool {
		return slices.Equal(eligibleNames(service(t, admin)), []string{"e1", "e2"})
	})
	exchange(t, listen, 5)

	// A member is a backend like any other: the fleet's drain applies to it,
	// and to it again when it comes back.
	if code := postJSON(admin, "/api/v1/services/echo/backends/e2/drain", ""); code != 200 {
		t.Fatalf("draining member e2: %d", code)
	}
	if _, err := cli.Delete(ctx, "/balance-l4/m/members/echo/e2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "e2 gone with its key", func() bool { return !slices.Contains(backendNames(service(t, admin)), "e2") })
	put("e2", fmt.Sprintf(`{"address": %q, "weight": 7}`, e2.Addr()))
	waitFor(t, "e2 back, still drained by the fleet", func() bool {
		var b struct{ State string }
		return getJSON(admin, "/api/v1/services/echo/backends/e2", &b) == 200 && b.State == "draining"
	})
	postJSON(admin, "/api/v1/services/echo/backends/e2/undrain", "")
	waitFor(t, "e2 eligible again", func() bool { return slices.Contains(eligibleNames(service(t, admin)), "e2") })

	// The lease goes (the member died): so does the backend.
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "e1 gone with its lease", func() bool { return slices.Equal(backendNames(service(t, admin)), []string{"e2"}) })

	// etcd down: the set freezes and traffic flows.
	for i := range c.Members() {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "etcd seen down", func() bool {
		var f struct{ Connected bool }
		getJSON(admin, "/api/v1/fleet", &f)
		return !f.Connected
	})
	if got := backendNames(service(t, admin)); !slices.Equal(got, []string{"e2"}) {
		t.Fatalf("etcd down changed the members: %v", got)
	}
	exchange(t, listen, 5)
	for i := range c.Members() {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitHealthy(t)
	put("e1", fmt.Sprintf(`{"address": %q}`, e1.Addr()))
	waitFor(t, "e1 back after etcd returned", func() bool {
		return slices.Equal(eligibleNames(service(t, admin)), []string{"e1", "e2"})
	})
}
