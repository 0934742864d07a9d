package health

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testservers"
)

func TestTCPCheckConnect(t *testing.T) {
	addr := serve(t, silent)
	c := mustChecker(t, CheckSettings{Type: "tcp"})
	if err := check(t, c, addr, 5*time.Second); err != nil {
		t.Fatalf("connect to a listener: %v", err)
	}
}

func TestTCPCheckRefused(t *testing.T) {
	c := mustChecker(t, CheckSettings{}) // "" is tcp
	err := check(t, c, closedAddr(t), 5*time.Second)
	wantErr(t, err, syscall.ECONNREFUSED, "dial tcp", refused)
}

func TestTCPCheckSendExpect(t *testing.T) {
	// An echo-like server that answers a line with a greeting split over
	// two writes, so the checker must keep reading.
	addr := serve(t, func(c net.Conn) {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "HELLO\r\n" {
			return
		}
		c.Write([]byte("+OK ready, "))
		c.Write([]byte("role: master\r\n"))
		drain(c)
	})
	c := mustChecker(t, CheckSettings{Type: "tcp", Send: []byte("HELLO\r\n"), Expect: "role: master"})
	if err := check(t, c, addr, 5*time.Second); err != nil {
		t.Fatalf("send+expect: %v", err)
	}
}

func TestTCPCheckExpectMismatchClosed(t *testing.T) {
	addr := serve(t, func(c net.Conn) { c.Write([]byte("role: replica\r\n")) }) // and close
	c := mustChecker(t, CheckSettings{Type: "tcp", Expect: "role: master"})
	err := check(t, c, addr, 5*time.Second)
	wantErr(t, err, ErrUnexpectedReply, `"role: master"`, `role: replica`, "closed the connection")
}

func TestTCPCheckExpectMismatchTimesOut(t *testing.T) {
	addr := serve(t, reply("role: replica\r\n"))
	c := mustChecker(t, CheckSettings{Type: "tcp", Send: []byte("ROLE\r\n"), Expect: "role: master"})
	err := check(t, c, addr, time.Second) // long enough for the reply to arrive first
	wantErr(t, err, context.DeadlineExceeded, `waiting for "role: master"`, "role: replica")
}

func TestTCPCheckTimeoutOnSilentListener(t *testing.T) {
	addr := serve(t, silent)
	c := mustChecker(t, CheckSettings{Type: "tcp", Expect: "220 "})
	err := check(t, c, addr, 500*time.Millisecond)
	wantErr(t, err, context.DeadlineExceeded, addr)
}

func TestTCPCheckCancelUnblocks(t *testing.T) {
	addr := serve(t, silent)
	c := mustChecker(t, CheckSettings{Type: "tcp", Expect: "never"})
	ctx, cancel := context.WithCancel(context.Background()) // no deadline at all
	errc := make(chan error, 1)
	go func() { errc <- c.Check(ctx, addr) }()
	cancel()
	select {
	case err := <-errc:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled check returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled check did not return")
	}
}

func TestTCPCheckReplyTooLong(t *testing.T) {
	addr := serve(t, func(c net.Conn) {
		chunk := []byte(strings.Repeat("x", 8192))
		for range 10 { // 80 KiB, more than the checker reads
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
		drain(c)
	})
	c := mustChecker(t, CheckSettings{Type: "tcp", Expect: "y"})
	err := check(t, c, addr, 5*time.Second)
	wantErr(t, err, ErrUnexpectedReply, "first 65536 bytes")
}

func TestTCPCheckSendWithoutExpect(t *testing.T) {
	got := make(chan string, 1)
	addr := serve(t, func(c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		got <- string(buf[:n])
	})
	c := mustChecker(t, CheckSettings{Type: "tcp", Send: []byte("QUIT\r\n")})
	if err := check(t, c, addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "QUIT\r\n" {
			t.Fatalf("server got %q, want the bytes sent", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server got nothing")
	}
}

func TestCheckPortOverride(t *testing.T) {
	checkAddr := serve(t, reply("alive\n"))
	port := checkAddr[strings.LastIndexByte(checkAddr, ':')+1:]
	backend := closedAddr(t) // the backend's own port is closed
	c := mustChecker(t, CheckSettings{Type: "tcp", Port: atoi(t, port), Expect: "alive"})
	if err := check(t, c, backend, 5*time.Second); err != nil {
		t.Fatalf("check with port override: %v", err)
	}
	if err := check(t, mustChecker(t, CheckSettings{Type: "tcp"}), backend, 5*time.Second); err == nil {
		t.Fatal("check without override passed against a closed port")
	}
}

func TestNewCheckerRejectsBadSettings(t *testing.T) {
	for _, s := range []CheckSettings{
		{Type: "icmp"},
		{Type: "TCP"},
		{Type: "tcp", Port: -1},
		{Type: "tcp", Port: 70000},
		{Type: "http", Path: "health"},
		{Type: "http", Path: "/a b"},
		{Type: "https", ExpectedStatus: []int{200, 1000}},
	} {
		if c, err := NewChecker(s); err == nil {
			t.Errorf("NewChecker(%+v) = %T, want an error", s, c)
		}
	}
	_, err := NewChecker(CheckSettings{Type: "icmp"})
	wantErr(t, err, ErrUnknownType, `"icmp"`)
}

func TestCheckBadBackendAddress(t *testing.T) {
	c := mustChecker(t, CheckSettings{Type: "tcp", Port: 80})
	err := check(t, c, "no-port", time.Second)
	wantErr(t, err, nil, "no-port")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkTCPCheck is one connect-only check against a loopback listener:
// mostly the kernel's handshake, for both ends.
func BenchmarkTCPCheck(b *testing.B) {
	benchmarkCheck(b, CheckSettings{Type: "tcp"})
}

// benchmarkCheck runs checks made with s against a loopback listener that
// closes what it accepts.
func benchmarkCheck(b *testing.B, s CheckSettings) {
	addr := testservers.AcceptAndClose(b)
	c, err := NewChecker(s)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Check(ctx, addr); err != nil {
			b.Fatal(err)
		}
	}
}
