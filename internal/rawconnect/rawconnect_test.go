package rawconnect

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/balancel4/balance-l4/internal/testservers"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		state int
		soErr syscall.Errno
		done  bool
		want  error // nil: connected (when done)
	}{
		{StateSynSent, 0, false, nil},
		{StateSynSent, syscall.EHOSTUNREACH, false, nil}, // a soft error: the kernel still retries
		{StateSynRecv, 0, false, nil},                    // simultaneous open
		{StateEstablished, 0, true, nil},
		{StateClose, syscall.ECONNREFUSED, true, syscall.ECONNREFUSED},
		{StateClose, syscall.ECONNRESET, true, syscall.ECONNRESET},
		{StateClose, syscall.ETIMEDOUT, true, syscall.ETIMEDOUT},
		{StateClose, syscall.EPIPE, true, syscall.EPIPE},
		{StateClose, 0, true, syscall.ECONNABORTED}, // no reason recorded: not a reset
		{StateCloseWait, 0, true, nil},              // accepted and closed at once: connected
		{StateCloseWait, syscall.ECONNRESET, true, syscall.ECONNRESET},
	} {
		done, err := Judge(tc.state, tc.soErr)
		if done != tc.done || (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("state %d, SO_ERROR %v: got %v, %v; want %v, %v", tc.state, tc.soErr, done, err, tc.done, tc.want)
		}
		var se *os.SyscallError
		if err != nil && (!errors.As(err, &se) || se.Syscall != "connect") {
			t.Errorf("state %d, SO_ERROR %v: %v is not connect's *os.SyscallError", tc.state, tc.soErr, err)
		}
	}
}

func TestParseAddrPortAsNetip(t *testing.T) {
	for _, addr := range []string{
		"127.0.0.1:80", "10.0.0.1:65535", "[::1]:8080", "[::ffff:10.0.0.1]:443", "0.0.0.0:0",
		"[1.2.3.4]:80", "::1:80", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:+1",
		"[fe80::1%eth0]:80", "localhost:80", "db.example.com:5432", "[]:80", ":80", "", "[::1]", "[::1]:",
	} {
		want, err := netip.ParseAddrPort(addr)
		wantOK := err == nil && want.Addr().Zone() == ""
		want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
		got, ok := ParseAddrPort(addr)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("ParseAddrPort(%q) = %v, %v; want %v, %v", addr, got, ok, want, wantOK)
		}
	}
}

func TestSockaddrFrom(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		family int
		bytes  []byte // the socket address as the kernel reads it, after the family
	}{
		{"10.1.2.3:443", unix.AF_INET, []byte{0x01, 0xbb, 10, 1, 2, 3}},
		{"[::ffff:10.1.2.3]:443", unix.AF_INET, []byte{0x01, 0xbb, 10, 1, 2, 3}}, // mapped: IPv4
		{"[2001:db8::7]:80", unix.AF_INET6, []byte{0, 80, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}},
	} {
		sa := SockaddrFrom(netip.MustParseAddrPort(tc.addr))
		if sa.Family() != tc.family {
			t.Errorf("%s: family %d, want %d", tc.addr, sa.Family(), tc.family)
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&sa.raw)), unsafe.Sizeof(sa.raw))
		if got := raw[2 : 2+len(tc.bytes)]; string(got) != string(tc.bytes) {
			t.Errorf("%s: % x, want % x", tc.addr, got, tc.bytes)
		}
	}
	if sa := SockaddrFrom(netip.AddrPort{}); sa.Family() != 0 {
		t.Errorf("no address: family %d", sa.Family())
	}
}

// start connects to addr; a connect still in flight is waited for.
func start(t *testing.T, ctx context.Context, addr string, timeout time.Duration) (*os.File, error) {
	t.Helper()
	sa := SockaddrFrom(netip.MustParseAddrPort(addr))
	fd, connected, err := Start(ctx, &sa, Options{NoDelay: true})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), addr)
	if !connected {
		if err := Wait(ctx, f, timeout); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return f, nil
}

func TestStartConnects(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(network, map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network])
		if err != nil {
			t.Logf("%s: no loopback: %v", network, err)
			continue
		}
		f, err := start(t, context.Background(), ln.Addr().String(), 5*time.Second)
		if err != nil {
			ln.Close()
			t.Fatalf("%s: %v", ln.Addr(), err)
		}
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%s read %q, %v", network, buf, err)
		}
		nodelay := -1
		if raw, err := f.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { nodelay, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) })
		}
		if nodelay != 1 {
			t.Errorf("%s: TCP_NODELAY %d, want 1", network, nodelay)
		}
		_ = c.Close()
		_ = f.Close()
		_ = ln.Close()
	}
}

func TestStartRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = start(t, context.Background(), addr, 5*time.Second)
	var se *os.SyscallError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &se) || se.Syscall != "connect" {
		t.Fatalf("connect to a closed port: %v, want connect: ECONNREFUSED", err)
	}
}

func TestStartRefusesADoneContext(t *testing.T) {
	addr := testservers.AcceptAndClose(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sa := SockaddrFrom(netip.MustParseAddrPort(addr))
	if fd, _, err := Start(ctx, &sa, Options{}); err != context.Canceled {
		if err == nil {
			_ = unix.Close(fd)
		}
		t.Fatalf("Start with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestWaitTimesOut(t *testing.T) {
	_, err := start(t, context.Background(), testservers.BlackHole(t), 50*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connect to a black hole: %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestWaitEndsWithContextsDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := start(t, ctx, testservers.BlackHole(t), time.Minute)
	if err != context.DeadlineExceeded {
		t.Fatalf("connect to a black hole: %v, want context.DeadlineExceeded", err)
	}
}

func TestWaitStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := start(t, ctx, testservers.BlackHole(t), time.Minute)
	if err != context.Canceled {
		t.Fatalf("connect to a black hole, cancelled: %v, want context.Canceled", err)
	}
}

// TestStartAllocatesNothing: a connect allocates nothing, whichever the
// options. On loopback the handshake completes inside connect(2) unless the
// listener's accept queue is full (somaxconn may be 128 and the acceptor
// slow under -race); then it stays in flight, which allocates nothing
// either. Each option gets its own listener, so the first connects find an
// empty queue and the completed path is always among those measured.
func TestStartAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{{}, {NoDelay: true}, {ResetOnClose: true}} {
		addr := testservers.AcceptAndClose(t)
		var failed error
		connected := 0
		allocs := testing.AllocsPerRun(100, func() {
			sa := SockaddrFrom(netip.MustParseAddrPort(addr)) // on the stack
			fd, done, err := Start(ctx, &sa, o)
			if err != nil {
				failed = err
				return
			}
			if done {
				connected++
			}
			_ = unix.Close(fd)
		})
		if failed != nil {
			t.Fatalf("%+v: %v", o, failed)
		}
		if connected == 0 {
			t.Fatalf("%+v: no loopback handshake completed inside connect(2)", o)
		}
		if allocs != 0 {
			t.Fatalf("%+v: a connect allocates %.1f times, want 0", o, allocs)
		}
	}
}
