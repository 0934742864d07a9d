package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/balancel4/balance-l4/internal/testservers"
)

func TestNewSockaddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		family int // 0: no raw address, Go's dialer
	}{
		{"127.0.0.1:80", syscall.AF_INET},
		{"[::1]:5432", syscall.AF_INET6},
		{"[::ffff:10.0.0.1]:80", syscall.AF_INET}, // mapped: dialled as IPv4
		{"db.internal:5432", 0},
		{"localhost:80", 0},
		{"[fe80::1%eth0]:80", 0},
		{"127.0.0.1:0", 0},
		{"127.0.0.1", 0},
	} {
		sa := newSockaddr(tc.addr)
		switch {
		case tc.family == 0 && sa != nil:
			t.Errorf("%s: got a raw address, want Go's dialer", tc.addr)
		case tc.family != 0 && (sa == nil || sa.Family() != tc.family):
			t.Errorf("%s: got %+v, want family %d", tc.addr, sa, tc.family)
		}
	}
}

// dialAndEcho dials addr raw and checks one exchange with an echo backend.
func dialAndEcho(t *testing.T, addr string) {
	t.Helper()
	sa := newSockaddr(addr)
	if sa == nil {
		t.Fatalf("%s: no raw address", addr)
	}
	fd, err := dialIP(context.Background(), sa, testTimeout, addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	f := os.NewFile(uintptr(fd), addr)
	defer f.Close()
	if _, err := f.Write([]byte("ping")); err != nil {
		t.Fatalf("writing: %v", err)
	}
	_ = f.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("reading the echo: %q, %v", buf, err)
	}
}

func TestDialIPConnects(t *testing.T) {
	dialAndEcho(t, startBackend(t, echo).addr)
}

func TestDialIPConnectsOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	done := make(chan struct{})
	defer func() { _ = ln.Close(); <-done }()
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	dialAndEcho(t, ln.Addr().String())
}

func TestDialIPRefused(t *testing.T) {
	addr := closedPort(t)
	_, err := dialIP(context.Background(), newSockaddr(addr), testTimeout, addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing a closed port: %v, want ECONNREFUSED", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the backend %s", err, addr)
	}
}

func TestDialIPTimesOut(t *testing.T) {
	addr := testservers.BlackHole(t)
	_, err := dialIP(context.Background(), newSockaddr(addr), 50*time.Millisecond, addr)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("dialing a black hole: %v, want a timeout after 50ms", err)
	}
}

func TestDialIPStopsWithContext(t *testing.T) {
	addr := testservers.BlackHole(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := dialIP(ctx, newSockaddr(addr), time.Minute, addr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("dialing a black hole with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestDialIPDescriptorIsNonBlocking: the descriptor a dial returns is
// non-blocking, as the copy engine needs it.
func TestDialIPDescriptorIsNonBlocking(t *testing.T) {
	addr := startBackend(t, hold).addr
	fd, err := dialIP(context.Background(), newSockaddr(addr), testTimeout, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the backend descriptor is blocking; the copy engine needs it non-blocking")
	}
	if _, err := unix.Read(fd, make([]byte, 1)); err != unix.EAGAIN {
		t.Fatalf("reading a silent backend: %v, want EAGAIN", err)
	}
}

// TestDialIPRefusesADoneContext: even a loopback connect, which would
// complete inside connect(2), fails once ctx is done.
func TestDialIPRefusesADoneContext(t *testing.T) {
	addr := startBackend(t, hold).addr
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if fd, err := dialIP(ctx, newSockaddr(addr), testTimeout, addr); !errors.Is(err, context.Canceled) {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		t.Fatalf("dialing with a cancelled context: %v, want context.Canceled", err)
	}
}

// BenchmarkDialIP: a raw connect to a loopback backend that accepts and
// closes, and the reset that ends it (no TIME_WAIT left behind).
func BenchmarkDialIP(b *testing.B) {
	addr := testservers.AcceptAndClose(b)
	sa := newSockaddr(addr)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		fd, err := dialIP(ctx, sa, testTimeout, addr)
		if err != nil {
			b.Fatal(err)
		}
		closeFD(fd, true)
	}
}

// TestDialIPAllocations: a raw connect that completes inside connect(2), as
// on loopback, allocates nothing: the descriptor goes to the copy engine as
// it is.
func TestDialIPAllocations(t *testing.T) {
	addr := testservers.AcceptAndClose(t)
	sa := newSockaddr(addr)
	ctx := context.Background()
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		fd, err := dialIP(ctx, sa, testTimeout, addr)
		if err != nil {
			failed = err
			return
		}
		closeFD(fd, true)
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs > 0 {
		t.Fatalf("a loopback dial allocates %.1f times, want none", allocs)
	}
}

// TestConnectThatWaitsIsSpliced: a backend whose handshake takes a second
// (its SYN is answered when sent again) is waited for by an engine loop, not
// a goroutine, and the client is served once it answers.
func TestConnectThatWaitsIsSpliced(t *testing.T) {
	addr, answer := testservers.AnswersLate(t)
	sc := testService("s", be("late", addr))
	sc.Timeouts.Connect = time.Minute
	rt, logs := startRuntime(t, testConfig(sc))
	c := dialService(t, rt, "s")
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an engine loop to wait for the connect", func() bool { return rt.eng.Stats().Connecting == 1 })
	ln := answer()
	go func() {
		b, err := ln.Accept()
		if err == nil {
			echo(b.(*net.TCPConn))
		}
	}()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v through a backend that answered late; want ping", buf, err)
	}
	if n := rt.eng.Stats().Connecting; n != 0 {
		t.Fatalf("%d connect waits left", n)
	}
	_ = c.Close()
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"client_fin"`) })
	if v := backendView(t, rt, "s", "late"); v.FailedConnections != 0 || v.TotalConnections != 1 {
		t.Fatalf("backend counted %d failed, %d total connections; want 0 and 1", v.FailedConnections, v.TotalConnections)
	}
}

// TestShutdownEndsAConnectWait: a forced shutdown does not wait out a
// connect timeout: the engine's wait is canceled and the client closed.
func TestShutdownEndsAConnectWait(t *testing.T) {
	hole := testservers.BlackHole(t)
	sc := testService("s", be("hole", hole))
	sc.Timeouts.Connect = time.Hour
	logs := &syncBuffer{}
	rt := NewRuntime(Options{Log: zerolog.New(logs)})
	t.Cleanup(func() { _, _ = rt.Shutdown(context.Background()) }) // after a failure; a second Shutdown does nothing
	if _, err := rt.Apply(testConfig(sc)); err != nil {
		t.Fatalf("applying configuration: %v", err)
	}
	c := dialService(t, rt, "s")
	waitFor(t, "an engine loop to wait for the connect", func() bool { return rt.eng.Stats().Connecting == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	forced, err := rt.Shutdown(ctx) // an hour, were the wait not canceled
	if forced != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %d, %v; want 1, deadline exceeded", forced, err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client read a byte from a service that never connected")
	}
	if v := backendView(t, rt, "s", "hole"); v.FailedConnections != 0 {
		t.Fatalf("a connect the shutdown canceled counted as %d failed connects of the backend", v.FailedConnections)
	}
	line := `"end":"connect_failed","error":"l4: every connect attempt failed: dialing backend ` + hole + `: connect: engine: connect wait canceled: context canceled"`
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("no access log line with %s:\n%s", line, logs)
	}
}

// TestHostNameBackendsShareRoundRobin: backends named by host name are
// connected by a goroutine after the loop picked them; round robin still
// takes each in turn (the goroutine once picked again, and every client went
// to the same backend).
func TestHostNameBackendsShareRoundRobin(t *testing.T) {
	a, b := startBackend(t, sayName("a")), startBackend(t, sayName("b"))
	named := func(addr string) string { return "localhost" + addr[strings.LastIndexByte(addr, ':'):] }
	rt, _ := startRuntime(t, testConfig(testService("s", be("a", named(a.addr)), be("b", named(b.addr)))))
	if got := countNames(t, rt, "s", 20); got["a"] != 10 || got["b"] != 10 {
		t.Fatalf("20 round-robin connections went %v, want 10 each", got)
	}
}
