package l4

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/internal/testcert"
	"github.com/balancel4/balance-l4/internal/testclock"
	"github.com/balancel4/balance-l4/proxyproto"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// dialFrom connects from a given local address (127.0.0.2, ::1...) to addr.
func dialFrom(t *testing.T, local, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s from %s: %v", addr, local, err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = tc.Close() })
	return tc
}

// served reports whether a client from local gets the backend's one-byte
// name ("a") through addr, or is closed without a byte.
func served(t *testing.T, local, addr string) bool {
	t.Helper()
	c := dialFrom(t, local, addr)
	defer c.Close()
	buf := make([]byte, 1)
	_, err := io.ReadFull(c, buf)
	switch {
	case err == nil:
		return true
	case err == io.EOF || isReset(err):
		return false
	}
	t.Fatalf("client from %s: %v", local, err)
	return false
}

// listenPort returns addr's port.
func listenPort(a net.Addr) int { return a.(*net.TCPAddr).Port }

// TestAllowDeny: clients from 127.0.0.2, 127.0.0.3 and ::1 against deny
// and allow lists, on a dual-stack listener (IPv4 clients are seen as
// IPv4); a denied client never reaches a backend, is counted and logged.
func TestAllowDeny(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	both := testService("both", be("a", srv.addr))
	both.Listen = "[::]:0"
	both.Allow = prefixes("127.0.0.0/8", "::1/128")
	both.Deny = prefixes("127.0.0.2/32")
	only := testService("only", be("a", srv.addr))
	only.Listen = "[::]:0"
	only.Allow = prefixes("127.0.0.3/32")
	rt, logs := startRuntime(t, testConfig(both, only))
	v4 := func(svc string) string { return fmt.Sprintf("127.0.0.1:%d", listenPort(rt.Addr(svc))) }
	v6 := func(svc string) string { return fmt.Sprintf("[::1]:%d", listenPort(rt.Addr(svc))) }

	cases := []struct {
		svc, from, addr string
		want            bool
	}{
		{"both", "127.0.0.2", v4("both"), false}, // in deny, though in allow
		{"both", "127.0.0.3", v4("both"), true},
		{"both", "::1", v6("both"), true},
		{"only", "127.0.0.3", v4("only"), true},
		{"only", "127.0.0.2", v4("only"), false}, // outside allow
		{"only", "::1", v6("only"), false},
	}
	for _, tc := range cases {
		if got := served(t, tc.from, tc.addr); got != tc.want {
			t.Errorf("%s from %s: served %t, want %t", tc.svc, tc.from, got, tc.want)
		}
	}
	waitFor(t, "the rejections counted", func() bool {
		return serviceView(t, rt, "both").Rejected.Denied == 1 && serviceView(t, rt, "only").Rejected.Denied == 2
	})
	if n := backendView(t, rt, "both", "a").TotalConnections + backendView(t, rt, "only", "a").TotalConnections; n != 3 {
		t.Fatalf("the backends saw %d connections, want only the 3 allowed", n)
	}
	waitFor(t, "the access log lines", func() bool { return strings.Count(logs.String(), `"end":"rejected: denied"`) == 3 })
	for _, want := range []string{
		`"client":"127.0.0.2:`, "client address is in deny", "client address is not in allow", `"client":"[::1]:`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the access log does not show %q:\n%s", want, logs)
		}
	}
}

// TestAllowDenyChecksTheProxySource: with accept_proxy the PROXY header's
// source is the client that allow and deny judge.
func TestAllowDenyChecksTheProxySource(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	sc := testService("s", be("a", srv.addr))
	sc.AcceptProxy = true
	sc.Deny = prefixes("10.9.9.0/24")
	rt, logs := startRuntime(t, testConfig(sc))
	try := func(src string) bool {
		c := dialService(t, rt, "s")
		defer c.Close()
		h := proxyproto.AppendV1(nil, &net.TCPAddr{IP: net.ParseIP(src), Port: 4000}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443})
		if _, err := c.Write(h); err != nil {
			t.Fatal(err)
		}
		_, err := io.ReadFull(c, make([]byte, 1))
		return err == nil
	}
	if try("10.9.9.9") {
		t.Fatal("a client from 10.9.9.9 (in deny, per its PROXY header) was served")
	}
	if !try("10.1.1.1") {
		t.Fatal("a client from 10.1.1.1 was not served")
	}
	waitFor(t, "the access line", func() bool { return strings.Contains(logs.String(), `"client":"10.9.9.9:4000"`) })
	if v := serviceView(t, rt, "s"); v.Rejected.Denied != 1 {
		t.Fatalf("denied %d, want 1", v.Rejected.Denied)
	}
}

// TestAllowDenyAfterSNIRouting: on a shared address each route's own lists
// apply, after routing.
func TestAllowDenyAfterSNIRouting(t *testing.T) {
	ca := testcert.NewCA(t, "sni test CA")
	listen := closedPort(t)
	a := tlsBackend(t, ca, "a", "a.example.com")
	b := tlsBackend(t, ca, "b", "b.example.com")
	sa := sniService("a", listen, a, "a.example.com")
	sa.Allow = prefixes("127.0.0.2/32")
	sb := sniService("b", listen, b, "b.example.com")
	sb.Deny = prefixes("127.0.0.2/32")
	rt, _ := startRuntime(t, testConfig(sa, sb))
	call := func(local, name string) error {
		_, _, err := tlsCall(listen, name, &tlsPool{ca: ca, local: local}, nil)
		return err
	}
	if err := call("127.0.0.2", "a.example.com"); err != nil {
		t.Fatalf("a from 127.0.0.2 (in a's allow): %v", err)
	}
	if err := call("127.0.0.2", "b.example.com"); err == nil {
		t.Fatal("b from 127.0.0.2 (in b's deny) was served")
	}
	if err := call("127.0.0.3", "a.example.com"); err == nil {
		t.Fatal("a from 127.0.0.3 (outside a's allow) was served")
	}
	if err := call("127.0.0.3", "b.example.com"); err != nil {
		t.Fatalf("b from 127.0.0.3: %v", err)
	}
	waitFor(t, "the rejections counted", func() bool {
		return serviceView(t, rt, "a").Rejected.Denied == 1 && serviceView(t, rt, "b").Rejected.Denied == 1
	})
}

// TestPerClientConnections: max_connections_per_client counts each client
// address apart; a closed connection gives its place back.
func TestPerClientConnections(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	sc := testService("s", be("a", srv.addr))
	sc.MaxConnectionsPerClient = 2
	rt, logs := startRuntime(t, testConfig(sc))
	addr := rt.Addr("s").String()
	open := func(local string) *net.TCPConn {
		c := dialFrom(t, local, addr)
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("connection from %s: %v", local, err)
		}
		return c
	}
	first, _ := open("127.0.0.2"), open("127.0.0.2")
	if served(t, "127.0.0.2", addr) {
		t.Fatal("a third connection from 127.0.0.2 was served")
	}
	open("127.0.0.3")
	open("127.0.0.3")
	if served(t, "127.0.0.3", addr) {
		t.Fatal("a third connection from 127.0.0.3 was served")
	}
	_ = first.Close()
	waitFor(t, "the first connection to end", func() bool { return serviceView(t, rt, "s").ActiveConnections == 3 })
	open("127.0.0.2")
	if v := serviceView(t, rt, "s"); v.Rejected.ClientLimit != 2 {
		t.Fatalf("client_limit %d, want 2", v.Rejected.ClientLimit)
	}
	waitFor(t, "the access log lines", func() bool { return strings.Count(logs.String(), `"end":"rejected: client_limit"`) == 2 })
	if !strings.Contains(logs.String(), "max_connections_per_client") {
		t.Fatalf("the access log does not name the limit:\n%s", logs)
	}
}

// TestPerClientRate: connection_rate_per_client is a token bucket per client
// that starts full with the rate's count; the clock is injected.
func TestPerClientRate(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := startBackend(t, sayName("a"))
	sc := testService("s", be("a", srv.addr))
	sc.ConnectionRatePerClient = config.Rate{Count: 3, Per: time.Second}
	rt, logs := startRuntime(t, testConfig(sc), func(r *Runtime) { r.now = clock.Now })
	addr := rt.Addr("s").String()
	for i := range 3 {
		if !served(t, "127.0.0.2", addr) {
			t.Fatalf("connection %d of the burst of 3 was refused", i+1)
		}
	}
	if served(t, "127.0.0.2", addr) {
		t.Fatal("a fourth connection at once was served")
	}
	if !served(t, "127.0.0.3", addr) {
		t.Fatal("another client shares 127.0.0.2's bucket")
	}
	clock.Advance(time.Second / 3) // one token back
	if !served(t, "127.0.0.2", addr) {
		t.Fatal("no connection after a token came back")
	}
	if served(t, "127.0.0.2", addr) {
		t.Fatal("two connections on one token")
	}
	clock.Advance(time.Hour) // full again: 3, no more
	for i := range 3 {
		if !served(t, "127.0.0.2", addr) {
			t.Fatalf("after an hour, connection %d was refused", i+1)
		}
	}
	if served(t, "127.0.0.2", addr) {
		t.Fatal("the bucket holds more than its count")
	}
	if v := serviceView(t, rt, "s"); v.Rejected.ClientLimit != 3 || v.Rejected.Denied != 0 {
		t.Fatalf("client_limit %d denied %d, want 3 and 0", v.Rejected.ClientLimit, v.Rejected.Denied)
	}
	waitFor(t, "the access log lines", func() bool {
		return strings.Count(logs.String(), "connection_rate_per_client") == 3
	})
}

// TestServiceLimitBeforeClientRate: a client the service's max_connections
// refuses takes no token of its per-client rate.
func TestServiceLimitBeforeClientRate(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := startBackend(t, sayName("a"))
	sc := testService("s", be("a", srv.addr))
	sc.MaxConnections = 1
	sc.ConnectionRatePerClient = config.Rate{Count: 2, Per: time.Minute}
	rt, _ := startRuntime(t, testConfig(sc), func(r *Runtime) { r.now = clock.Now })
	addr := rt.Addr("s").String()
	held := dialFrom(t, "127.0.0.2", addr) // token 1
	if _, err := io.ReadFull(held, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if served(t, "127.0.0.2", addr) {
			t.Fatal("served beyond max_connections")
		}
	}
	_ = held.Close()
	waitFor(t, "the held connection to end", func() bool { return serviceView(t, rt, "s").ActiveConnections == 0 })
	if !served(t, "127.0.0.2", addr) { // token 2: the refusals took none
		t.Fatal("the service's refusals took the client's tokens")
	}
	waitFor(t, "that connection to end", func() bool { return serviceView(t, rt, "s").ActiveConnections == 0 })
	if served(t, "127.0.0.2", addr) {
		t.Fatal("a third token")
	}
	if v := serviceView(t, rt, "s"); v.Rejected.MaxConnections != 3 || v.Rejected.ClientLimit != 1 {
		t.Fatalf("max_connections %d, client_limit %d; want 3 and 1", v.Rejected.MaxConnections, v.Rejected.ClientLimit)
	}
}
