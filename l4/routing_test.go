package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/internal/testservers"
	"github.com/balancel4/balance-l4/proxyproto"
)

// countNames makes n connections and counts which backend answered.
func countNames(t *testing.T, rt *Runtime, service string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		counts[readName(t, rt, service, 1)]++
	}
	return counts
}

// TestAlgorithmsThroughRealConnections checks each algorithm's share through
// real connections (the balance package has the exact unit tests).
func TestAlgorithmsThroughRealConnections(t *testing.T) {
	a := startBackend(t, sayName("a"))
	b := startBackend(t, sayName("b"))
	for _, alg := range []string{config.RoundRobin, config.LeastConnections, config.RandomTwo} {
		t.Run(alg, func(t *testing.T) {
			sc := testService("s", config.Backend{Name: "a", Address: a.addr, Weight: 3}, config.Backend{Name: "b", Address: b.addr, Weight: 1})
			sc.Algorithm = alg
			rt, _ := startRuntime(t, testConfig(sc))
			// Connections stay open, so least_connections and random_two
			// see active/weight grow.
			got := map[string]int{}
			var one [1]byte
			for range 40 {
				c := dialService(t, rt, "s")
				if _, err := io.ReadFull(c, one[:]); err != nil {
					t.Fatalf("reading the backend's name: %v", err)
				}
				got[string(one[:])]++
			}
			switch alg {
			case config.RoundRobin, config.LeastConnections:
				if got["a"] != 30 || got["b"] != 10 {
					t.Fatalf("%s 3:1 over 40 connections gave %v", alg, got)
				}
			default:
				if got["a"] <= got["b"] || got["b"] == 0 {
					t.Fatalf("%s with weights 3:1 gave %v", alg, got)
				}
			}
		})
	}
	t.Run(config.SourceHash, func(t *testing.T) {
		sc := testService("s", be("a", a.addr), be("b", b.addr))
		sc.Algorithm = config.SourceHash
		rt, _ := startRuntime(t, testConfig(sc))
		got := countNames(t, rt, "s", 20)
		if len(got) != 1 {
			t.Fatalf("one client IP went to %v, want one backend", got)
		}
	})
}

// TestWeightZeroGetsNothing: a weight-0 backend takes no connection.
func TestWeightZeroGetsNothing(t *testing.T) {
	a := startBackend(t, sayName("a"))
	z := startBackend(t, sayName("z"))
	sc := testService("s", be("a", a.addr), config.Backend{Name: "z", Address: z.addr})
	sc.Backends[1].Weight = 0
	rt, _ := startRuntime(t, testConfig(sc))
	if got := countNames(t, rt, "s", 20); got["z"] != 0 || got["a"] != 20 {
		t.Fatalf("got %v, want every connection on a", got)
	}
	if v := backendView(t, rt, "s", "z"); v.Eligible || v.Reason != "weight is 0" {
		t.Fatalf("weight-0 backend: eligible %v, reason %q", v.Eligible, v.Reason)
	}
}

// TestBackupOnlyWhenNoPrimaryEligible: the backup takes connections only
// while no primary is eligible.
func TestBackupOnlyWhenNoPrimaryEligible(t *testing.T) {
	p := startBackend(t, sayName("p"))
	k := startBackend(t, sayName("k"))
	sc := testService("s", be("p", p.addr), config.Backend{Name: "k", Address: k.addr, Weight: 1, Backup: true})
	rt, _ := startRuntime(t, testConfig(sc))
	if got := countNames(t, rt, "s", 10); got["p"] != 10 {
		t.Fatalf("with the primary eligible got %v", got)
	}
	if _, err := rt.Drain("s", "p", "test"); err != nil {
		t.Fatal(err)
	}
	if got := countNames(t, rt, "s", 10); got["k"] != 10 {
		t.Fatalf("with the primary drained got %v", got)
	}
	if _, err := rt.Undrain("s", "p", "test"); err != nil {
		t.Fatal(err)
	}
	if got := countNames(t, rt, "s", 10); got["p"] != 10 {
		t.Fatalf("after undrain got %v", got)
	}
}

// TestServiceMaxConnections: beyond the service's max_connections new
// clients are closed and counted.
func TestServiceMaxConnections(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	sc := testService("s", be("a", srv.addr))
	sc.MaxConnections = 2
	rt, logs := startRuntime(t, testConfig(sc))
	for range 2 {
		c := dialService(t, rt, "s")
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			t.Fatalf("a connection under the limit: %v", err)
		}
	}
	c := dialService(t, rt, "s")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("third connection read %d bytes, err %v; want it closed", n, err)
	}
	waitFor(t, "the rejection to be counted", func() bool { return serviceView(t, rt, "s").Rejected.MaxConnections == 1 })
	if v := serviceView(t, rt, "s"); v.RejectedConnections != 1 {
		t.Fatalf("rejected_connections = %d, want 1", v.RejectedConnections)
	}
	// The line is written after the close the client saw.
	waitFor(t, "the access log line for the rejection", func() bool {
		return strings.Contains(logs.String(), `"end":"rejected: max_connections"`)
	})
}

// TestBackendMaxConnections: a full backend is not eligible; new
// connections go to the other one.
func TestBackendMaxConnections(t *testing.T) {
	a := startBackend(t, sayName("a"))
	b := startBackend(t, sayName("b"))
	sc := testService("s", config.Backend{Name: "a", Address: a.addr, Weight: 1, MaxConnections: 1}, be("b", b.addr))
	rt, _ := startRuntime(t, testConfig(sc))
	first := dialService(t, rt, "s") // round robin: a
	var one [1]byte
	if _, err := io.ReadFull(first, one[:]); err != nil || one[0] != 'a' {
		t.Fatalf("first connection: %q %v", one, err)
	}
	if got := countNames(t, rt, "s", 6); got["b"] != 6 {
		t.Fatalf("with a full got %v, want all on b", got)
	}
	if v := backendView(t, rt, "s", "a"); v.Eligible || !strings.Contains(v.Reason, "max_connections") {
		t.Fatalf("full backend: eligible %v reason %q", v.Eligible, v.Reason)
	}
	_ = first.Close()
	waitFor(t, "a to have room", func() bool { return backendView(t, rt, "s", "a").Eligible })
}

// TestConnectTimeoutFailsOver: a backend whose connect hangs costs one
// connect timeout, then the next backend serves the client.
func TestConnectTimeoutFailsOver(t *testing.T) {
	hole := testservers.BlackHole(t)
	good := startBackend(t, sayName("g"))
	sc := testService("s", be("hole", hole), be("good", good.addr))
	sc.Timeouts.Connect = 100 * time.Millisecond
	rt, logs := startRuntime(t, testConfig(sc))
	for i := range 4 {
		if got := readName(t, rt, "s", 1); got != "g" {
			t.Fatalf("connection %d answered by %q", i, got)
		}
	}
	if v := backendView(t, rt, "s", "hole"); v.FailedConnections == 0 {
		t.Fatal("the black hole counted no failed connect")
	}
	if v := serviceView(t, rt, "s"); v.Retries == 0 {
		t.Fatal("no retry counted")
	}
	if !strings.Contains(logs.String(), "no answer within 100ms") {
		t.Fatalf("no connect timeout logged:\n%s", logs)
	}
}

// TestFailoverKeepsClientsWhole: one of three backends dies while a client
// makes 500 sequential connections; none of them fails.
func TestFailoverKeepsClientsWhole(t *testing.T) {
	var srv [3]*backendServer
	for i := range srv {
		srv[i] = startBackend(t, echo)
	}
	sc := testService("s", be("a", srv[0].addr), be("b", srv[1].addr), be("c", srv[2].addr))
	sc.Resilience.CircuitBreaker.Enabled = true
	sc.HealthCheck.Passive.Enabled = true
	rt, _ := startRuntime(t, testConfig(sc))
	msg := []byte("ping")
	buf := make([]byte, len(msg))
	for i := range 500 {
		if i == 100 {
			srv[1].stop()
		}
		c := dialService(t, rt, "s")
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("connection %d: writing: %v", i, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("connection %d: reading: %v", i, err)
		}
		_ = c.Close()
	}
	if v := serviceView(t, rt, "s"); v.RejectedConnections != 0 {
		t.Fatalf("%d connections rejected", v.RejectedConnections)
	}
	v := backendView(t, rt, "s", "b")
	if v.Eligible || v.FailedConnections == 0 {
		t.Fatalf("dead backend: eligible %v, failed %d (state %s, circuit %s)", v.Eligible, v.FailedConnections, v.State, v.Circuit)
	}
}

// TestAllBackendsDown: with every backend refusing, the client is closed
// promptly and the rejection counted; a backup takes over when present.
func TestAllBackendsDown(t *testing.T) {
	sc := testService("s", be("a", closedPort(t)), be("b", closedPort(t)))
	rt, logs := startRuntime(t, testConfig(sc))
	c := dialService(t, rt, "s")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
	waitFor(t, "the rejection to be counted", func() bool { return serviceView(t, rt, "s").Rejected.ConnectFailed == 1 })
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"connect_failed"`) })

	k := startBackend(t, sayName("k"))
	sc2 := testService("t", be("a", closedPort(t)), config.Backend{Name: "k", Address: k.addr, Weight: 1, Backup: true})
	sc2.HealthCheck.Passive.Enabled = true
	sc2.HealthCheck.Passive.ConsecutiveFailures = 1
	rt2, _ := startRuntime(t, testConfig(sc2))
	// The first client's connect to a is refused; passive checks mark a
	// unhealthy at once and the retry goes to the backup.
	for i := range 3 {
		if got := readName(t, rt2, "t", 1); got != "k" {
			t.Fatalf("connection %d answered by %q, want the backup", i, got)
		}
	}
	if v := serviceView(t, rt2, "t"); v.RejectedConnections != 0 {
		t.Fatalf("%d rejected with a backup present", v.RejectedConnections)
	}
}

// TestNoEligibleBackendRejects: nothing eligible is counted as no_backend.
func TestNoEligibleBackendRejects(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	rt, _ := startRuntime(t, testConfig(testService("s", be("a", srv.addr))))
	if _, err := rt.Drain("s", "a", "test"); err != nil {
		t.Fatal(err)
	}
	c := dialService(t, rt, "s")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v; want closed", n, err)
	}
	waitFor(t, "no_backend to be counted", func() bool { return serviceView(t, rt, "s").Rejected.NoBackend == 1 })
}

// TestPassiveChecksAndBreaker: real refused connects open the breaker and
// mark the backend unhealthy through passive checks.
func TestPassiveChecksAndBreaker(t *testing.T) {
	good := startBackend(t, sayName("g"))
	sc := testService("s", be("dead", closedPort(t)), be("good", good.addr))
	sc.Resilience.CircuitBreaker.Enabled = true
	sc.Resilience.CircuitBreaker.MaxFailures = 2
	sc.HealthCheck.Passive.Enabled = true
	sc.HealthCheck.Passive.ConsecutiveFailures = 3
	rt, _ := startRuntime(t, testConfig(sc))
	for i := range 10 {
		if got := readName(t, rt, "s", 1); got != "g" {
			t.Fatalf("connection %d answered by %q", i, got)
		}
	}
	v := backendView(t, rt, "s", "dead")
	if v.Circuit != "open" {
		t.Fatalf("circuit = %s after refused connects, want open", v.Circuit)
	}
	if v.FailedConnections != 2 {
		t.Fatalf("failed connections = %d, want 2 (the breaker stops attempts)", v.FailedConnections)
	}
	if v.Eligible || v.Reason == "" {
		t.Fatalf("eligible %v reason %q", v.Eligible, v.Reason)
	}
	found := false
	for _, e := range v.Events {
		if e.To == "circuit_open" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no circuit event in %+v", v.Events)
	}

	// Without the breaker, passive checks alone take the backend out.
	sc2 := testService("p", be("dead", closedPort(t)), be("good", good.addr))
	sc2.HealthCheck.Passive.Enabled = true
	sc2.HealthCheck.Passive.ConsecutiveFailures = 2
	rt2, _ := startRuntime(t, testConfig(sc2))
	for range 6 {
		readName(t, rt2, "p", 1)
	}
	v = backendView(t, rt2, "p", "dead")
	if v.State != "unhealthy" || v.Health != "unhealthy" || v.FailedConnections != 2 {
		t.Fatalf("after passive failures: state %s health %s failed %d", v.State, v.Health, v.FailedConnections)
	}
	if len(v.Events) == 0 || !strings.HasPrefix(v.Events[0].Reason, "passive:") {
		t.Fatalf("events %+v, want a passive change first", v.Events)
	}
}

// TestEarlyBackendResetIsPassiveFailure: a backend that resets before
// sending any byte counts as a failure.
func TestEarlyBackendResetIsPassiveFailure(t *testing.T) {
	srv := startBackend(t, func(c *net.TCPConn) {
		_ = c.SetLinger(0)
	})
	sc := testService("s", be("r", srv.addr))
	sc.HealthCheck.Passive.Enabled = true
	sc.HealthCheck.Passive.ConsecutiveFailures = 2
	rt, _ := startRuntime(t, testConfig(sc))
	for range 2 {
		// The proxy may reset the client before its connect returns.
		c, err := net.DialTimeout("tcp", rt.Addr("s").String(), testTimeout)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	}
	waitFor(t, "the backend to turn unhealthy", func() bool { return backendView(t, rt, "s", "r").State == "unhealthy" })
}

// TestDrainAndDisconnect: a drained backend keeps its established connection
// and new ones go elsewhere; disconnect closes the established ones.
func TestDrainAndDisconnect(t *testing.T) {
	a := startBackend(t, echo)
	b := startBackend(t, sayName("b"))
	sc := testService("s", be("a", a.addr), be("b", b.addr))
	rt, _ := startRuntime(t, testConfig(sc))
	est := dialService(t, rt, "s") // round robin: a
	roundTrip := func() error {
		if _, err := est.Write([]byte("x")); err != nil {
			return err
		}
		_, err := io.ReadFull(est, make([]byte, 1))
		return err
	}
	if err := roundTrip(); err != nil {
		t.Fatal(err)
	}
	v, err := rt.Drain("s", "a", "test")
	if err != nil {
		t.Fatal(err)
	}
	if v.State != "draining" || v.Drained || v.Eligible {
		t.Fatalf("after drain: state %s drained %v eligible %v", v.State, v.Drained, v.Eligible)
	}
	if got := countNames(t, rt, "s", 4); got["b"] != 4 {
		t.Fatalf("new connections while a drains: %v", got)
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("established connection after drain: %v", err)
	}
	n, err := rt.Disconnect("s", "a", "test")
	if err != nil || n != 1 {
		t.Fatalf("disconnect closed %d, %v; want 1", n, err)
	}
	if _, err := io.Copy(io.Discard, est); err != nil && !isReset(err) {
		t.Fatalf("after disconnect: %v", err)
	}
	waitFor(t, "a to be drained", func() bool { return backendView(t, rt, "s", "a").Drained })
	if _, err := rt.Drain("s", "nope", "test"); err == nil {
		t.Fatal("draining an unknown backend succeeded")
	}
}

// TestDrainTimeoutClosesLeftovers: with timeouts.drain set, what is still
// open after it is closed; undrain cancels it.
func TestDrainTimeoutClosesLeftovers(t *testing.T) {
	a := startBackend(t, hold)
	sc := testService("s", be("a", a.addr))
	sc.Timeouts.Drain = 100 * time.Millisecond
	rt, logs := startRuntime(t, testConfig(sc))
	c := dialService(t, rt, "s")
	waitFor(t, "the connection", func() bool { return backendView(t, rt, "s", "a").ActiveConnections == 1 })
	if _, err := rt.Drain("s", "a", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Fatalf("reading: %v", err)
	}
	waitFor(t, "the access log", func() bool { return strings.Contains(logs.String(), `"end":"drain_timeout"`) })
}

// TestGracefulShutdown: Shutdown lets a connection finish, and resets what
// is still open at the deadline.
func TestGracefulShutdown(t *testing.T) {
	srv := startBackend(t, echo)
	rt := NewRuntime(Options{Log: zerologDiscard()})
	if _, err := rt.Apply(testConfig(testService("s", be("a", srv.addr)))); err != nil {
		t.Fatal(err)
	}
	c := dialService(t, rt, "s")
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	addr := rt.Addr("s").String()
	type result struct {
		forced int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		f, err := rt.Shutdown(ctx)
		done <- result{f, err}
	}()
	// New connections are refused once the listener is closed.
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	// The established connection still works, then finishes.
	if _, err := c.Write([]byte("y")); err != nil {
		t.Fatalf("writing during shutdown: %v", err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("reading during shutdown: %v", err)
	}
	_ = c.CloseWrite()
	r := <-done
	if r.forced != 0 || r.err != nil {
		t.Fatalf("shutdown forced %d, %v; want 0, nil", r.forced, r.err)
	}

	// A connection that does not finish is reset at the deadline.
	srv2 := startBackend(t, hold)
	rt2 := NewRuntime(Options{Log: zerologDiscard()})
	if _, err := rt2.Apply(testConfig(testService("s", be("a", srv2.addr)))); err != nil {
		t.Fatal(err)
	}
	c2 := dialService(t, rt2, "s")
	waitFor(t, "the connection", func() bool { return serviceView(t, rt2, "s").ActiveConnections == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	forced, err := rt2.Shutdown(ctx)
	if forced != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("shutdown forced %d, %v; want 1, context.Canceled", forced, err)
	}
	if _, err := io.Copy(io.Discard, c2); err != nil && !isReset(err) {
		t.Fatalf("client after forced shutdown: %v", err)
	}
}

// TestProxyProtocolToBackend: v1 and v2 headers reach the backend first,
// with the client's address as source and the service's as destination.
func TestProxyProtocolToBackend(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			headers := make(chan proxyproto.Header, 1)
			srv := startBackend(t, func(c *net.TCPConn) {
				h, err := proxyproto.Read(c)
				if err != nil {
					return
				}
				headers <- h
				echo(c)
			})
			sc := testService("s", be("a", srv.addr))
			sc.ProxyProtocol = version
			rt, _ := startRuntime(t, testConfig(sc))
			c := dialService(t, rt, "s")
			if _, err := c.Write([]byte("after")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "after" {
				t.Fatalf("payload after the header: %q %v", buf, err)
			}
			h := <-headers
			wantV := map[string]int{"v1": 1, "v2": 2}[version]
			if h.Version != wantV || h.Command != proxyproto.Proxy {
				t.Fatalf("header %+v", h)
			}
			if h.Source.String() != c.LocalAddr().String() || h.Destination.String() != c.RemoteAddr().String() {
				t.Fatalf("header %s -> %s, want %s -> %s", h.Source, h.Destination, c.LocalAddr(), c.RemoteAddr())
			}
		})
	}
}

// TestAcceptProxy: a client's PROXY header is read before picking; its
// source is the client for source_hash and for the header sent on; a
// missing header closes the client and is counted.
func TestAcceptProxy(t *testing.T) {
	headers := make(chan proxyproto.Header, 4)
	srv := startBackend(t, func(c *net.TCPConn) {
		h, err := proxyproto.Read(c)
		if err != nil {
			return
		}
		headers <- h
		echo(c)
	})
	sc := testService("s", be("a", srv.addr))
	sc.AcceptProxy = true
	sc.ProxyProtocol = "v2"
	sc.Timeouts.Connect = 500 * time.Millisecond
	rt, logs := startRuntime(t, testConfig(sc))

	src := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 40000}
	dst := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 443}
	c := dialService(t, rt, "s")
	msg := append(proxyproto.AppendV1(nil, src, dst), "data"...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "data" {
		t.Fatalf("echo after the header: %q %v", buf, err)
	}
	h := <-headers
	if h.Source.String() != src.String() || h.Destination.String() != dst.String() {
		t.Fatalf("forwarded header %s -> %s, want %s -> %s", h.Source, h.Destination, src, dst)
	}
	_ = c.Close()
	waitFor(t, "the access log", func() bool { return strings.Contains(logs.String(), `"client":"203.0.113.7:40000"`) })

	bad := dialService(t, rt, "s")
	if _, err := bad.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := bad.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v; want closed", n, err)
	}
	silent := dialService(t, rt, "s") // sends nothing: the header deadline closes it
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v; want closed", n, err)
	}
	waitFor(t, "both rejections", func() bool { return serviceView(t, rt, "s").Rejected.ProxyHeader == 2 })
}

// TestCloseOnUnhealthy: when passive checks turn a backend unhealthy, its
// established connections are reset (close_on_unhealthy).
func TestCloseOnUnhealthy(t *testing.T) {
	a := startBackend(t, echo)
	b := startBackend(t, sayName("b"))
	sc := testService("s", be("a", a.addr), be("b", b.addr))
	sc.CloseOnUnhealthy = true
	sc.HealthCheck.Passive.Enabled = true
	sc.HealthCheck.Passive.ConsecutiveFailures = 2
	rt, logs := startRuntime(t, testConfig(sc))
	est := dialService(t, rt, "s") // round robin: a
	if _, err := est.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(est, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	_ = a.ln.Close() // a refuses new connections; the established one stays
	for range 4 {
		if got := readName(t, rt, "s", 1); got != "b" {
			t.Fatalf("answered by %q", got)
		}
	}
	if _, err := io.Copy(io.Discard, est); err != nil && !isReset(err) {
		t.Fatalf("established connection: %v", err)
	}
	waitFor(t, "the access log", func() bool { return strings.Contains(logs.String(), `"end":"backend_unhealthy"`) })
}

// TestActiveChecksMoveState: active checks take a dead backend out and
// bring it back when it listens again.
func TestActiveChecksMoveState(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	sc := testService("s", be("a", addr))
	sc.HealthCheck.Enabled = true
	sc.HealthCheck.Interval = 20 * time.Millisecond
	rt, _ := startRuntime(t, testConfig(sc))
	waitFor(t, "a first check", func() bool { return backendView(t, rt, "s", "a").LastCheck != nil })
	_ = ln.Close()
	waitFor(t, "a to turn unhealthy", func() bool { return backendView(t, rt, "s", "a").State == "unhealthy" })
	v := backendView(t, rt, "s", "a")
	if v.Eligible || v.LastCheck == nil || v.LastCheck.OK || v.LastCheck.Error == "" || v.ChecksFailure == 0 {
		t.Fatalf("after failed checks: %+v", v)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not listen on %s again: %v", addr, err)
	}
	defer ln2.Close()
	waitFor(t, "a to come back", func() bool { return backendView(t, rt, "s", "a").State == "healthy" })
}

// TestPassiveWithoutActiveChecksRevives: with active checks off, a backend
// that passive checks took out comes back after the breaker's timeout.
func TestPassiveWithoutActiveChecksRevives(t *testing.T) {
	good := startBackend(t, sayName("g"))
	sc := testService("s", be("dead", closedPort(t)), be("good", good.addr))
	sc.HealthCheck.Passive.Enabled = true
	sc.HealthCheck.Passive.ConsecutiveFailures = 1
	sc.Resilience.CircuitBreaker.Timeout = 50 * time.Millisecond
	rt, logs := startRuntime(t, testConfig(sc))
	readName(t, rt, "s", 1)
	if v := backendView(t, rt, "s", "dead"); v.State != "unhealthy" {
		t.Fatalf("state %s after a refused connect, want unhealthy", v.State)
	}
	waitFor(t, "the backend to come back", func() bool { return backendView(t, rt, "s", "dead").State == "healthy" })
	waitFor(t, "the log of the revival", func() bool { return strings.Contains(logs.String(), "circuit breaker timeout elapsed") })
}
