package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testservers"
)

// The tests here exercise the plain tcp check's own connect (connectCheck),
// which NewChecker picks for CheckSettings{Type: "tcp"} and IP literals.

func TestConnectCheckResetsTheConnection(t *testing.T) {
	readErr := make(chan error, 1)
	addr := serve(t, func(c net.Conn) {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	})
	if err := check(t, mustChecker(t, CheckSettings{Type: "tcp"}), addr, 5*time.Second); err != nil {
		t.Fatalf("connect to a listener: %v", err)
	}
	select {
	case err := <-readErr:
		// A reset, not a FIN: the check leaves no TIME_WAIT socket behind.
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the backend read %v after the check, want a reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend saw nothing of the check within 10s")
	}
}

func TestConnectCheckPassesWithoutAccept(t *testing.T) {
	// The kernel completes the handshake before the server accepts: that
	// is what the check asks, as net.Dialer's connect does.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := check(t, mustChecker(t, CheckSettings{}), l.Addr().String(), 5*time.Second); err != nil {
		t.Fatalf("connect to a listener that does not accept: %v", err)
	}
}

func TestConnectCheckRefused(t *testing.T) {
	addr := closedAddr(t)
	err := check(t, mustChecker(t, CheckSettings{Type: "tcp"}), addr, 5*time.Second)
	wantErr(t, err, syscall.ECONNREFUSED, "dial tcp "+addr+": connect: "+refused)
}

func TestConnectCheckPortOverride(t *testing.T) {
	up := serve(t, silent)
	_, port, _ := net.SplitHostPort(up)
	backend := closedAddr(t)
	c := mustChecker(t, CheckSettings{Type: "tcp", Port: atoi(t, port)})
	if err := check(t, c, backend, 5*time.Second); err != nil {
		t.Fatalf("check of %s with port override %s: %v", backend, port, err)
	}
	c = mustChecker(t, CheckSettings{Type: "tcp", Port: atoi(t, closedAddr(t)[len("127.0.0.1:"):])})
	err := check(t, c, up, 5*time.Second)
	wantErr(t, err, syscall.ECONNREFUSED, refused)
}

func TestConnectCheckHostNameUsesDialer(t *testing.T) {
	addr := serve(t, silent)
	_, port, _ := net.SplitHostPort(addr)
	c := mustChecker(t, CheckSettings{Type: "tcp"})
	if _, ok := c.(*tcpChecker).connectTarget("localhost:" + port); ok {
		t.Fatal("a host name took the IP-literal path")
	}
	if err := check(t, c, net.JoinHostPort("localhost", port), 5*time.Second); err != nil {
		t.Skipf("localhost does not resolve to 127.0.0.1 here: %v", err)
	}
}

func TestConnectCheckIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	c := mustChecker(t, CheckSettings{Type: "tcp"})
	if err := check(t, c, l.Addr().String(), 5*time.Second); err != nil {
		t.Fatalf("connect to %s: %v", l.Addr(), err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	addr := "[::1]:" + port
	wantErr(t, check(t, c, addr, 5*time.Second), syscall.ECONNREFUSED, "dial tcp "+addr, refused)
}

func TestConnectCheckBlackHoleTimesOut(t *testing.T) {
	hole := testservers.BlackHole(t)
	c := mustChecker(t, CheckSettings{Type: "tcp"})
	err := check(t, c, hole, 300*time.Millisecond)
	wantErr(t, err, context.DeadlineExceeded, "dial tcp "+hole)
}

// waitingCtx tells when a check asks for its deadline: connectCheck does so
// only once the handshake is in flight and it is about to wait.
type waitingCtx struct {
	context.Context
	once    *sync.Once
	waiting chan struct{}
}

func (c waitingCtx) Deadline() (time.Time, bool) {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Deadline()
}

func TestConnectCheckCancelWhileWaiting(t *testing.T) {
	hole := testservers.BlackHole(t)
	c := mustChecker(t, CheckSettings{Type: "tcp"})
	base, cancel := context.WithCancel(context.Background()) // no deadline at all
	defer cancel()
	ctx := waitingCtx{base, new(sync.Once), make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- c.Check(ctx, hole) }()
	select {
	case <-ctx.waiting:
	case err := <-errc:
		t.Fatalf("the check of a black hole returned %v before waiting", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the check did not start waiting within 10s")
	}
	cancel()
	select {
	case err := <-errc:
		wantErr(t, err, context.Canceled, "dial tcp "+hole)
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled check did not return within 10s")
	}
}

func TestConnectCheckCancelledBefore(t *testing.T) {
	addr := serve(t, silent)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := mustChecker(t, CheckSettings{Type: "tcp"}).Check(ctx, addr)
	wantErr(t, err, context.Canceled, "dial tcp "+addr)
}

func TestConnectCheckAllocatesNothing(t *testing.T) {
	addr := testservers.AcceptAndClose(t)
	c := mustChecker(t, CheckSettings{Type: "tcp"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.Check(ctx, addr); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatalf("check of a listener: %v", failed)
	}
	if allocs != 0 {
		t.Fatalf("a passing connect check allocates %.1f times, want 0", allocs)
	}
}

// BenchmarkTCPCheckDialer is BenchmarkTCPCheck through net.Dialer, the path
// of host names and of checks that send or expect, for comparison.
func BenchmarkTCPCheckDialer(b *testing.B) {
	benchmarkCheck(b, CheckSettings{Type: "tcp", Dialer: &net.Dialer{KeepAlive: -1}})
}

func TestConnectTargetParsesAsNetip(t *testing.T) {
	var d dialer
	for _, addr := range []string{
		"127.0.0.1:80", "10.0.0.1:65535", "[::1]:8080", "[::ffff:10.0.0.1]:443", "0.0.0.0:0",
		"[1.2.3.4]:80", "::1:80", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:+1",
		"[fe80::1%eth0]:80", "localhost:80", "db.example.com:5432", "[]:80", ":80", "",
	} {
		want, err := netip.ParseAddrPort(addr)
		wantOK := err == nil && want.Addr().Zone() == ""
		want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
		got, ok := d.connectTarget(addr)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("connectTarget(%q) = %v, %v; want %v, %v", addr, got, ok, want, wantOK)
		}
	}
	d.port = 9000
	if got, ok := d.connectTarget("[::1]:80"); !ok || got != netip.MustParseAddrPort("[::1]:9000") {
		t.Errorf("with port override 9000: %v, %v", got, ok)
	}
}

func TestConnectCheckIPv4Mapped(t *testing.T) {
	addr := serve(t, silent)
	_, port, _ := net.SplitHostPort(addr)
	mapped := "[::ffff:127.0.0.1]:" + port
	if err := check(t, mustChecker(t, CheckSettings{Type: "tcp"}), mapped, 5*time.Second); err != nil {
		t.Fatalf("connect to %s (an IPv4 listener): %v", mapped, err)
	}
}
