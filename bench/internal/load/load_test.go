package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/backend"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves h on a free port until the test ends.
func startServer(t *testing.T, h backend.Handler) string {
	t.Helper()
	s, err := backend.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("backend: %v", err)
		}
	})
	return s.Addr()
}

// closedAddr is a loopback address with nothing listening.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const shortRun = 200 * time.Millisecond

func TestThroughputCountsDeliveredBytes(t *testing.T) {
	addr := startServer(t, backend.Sink)
	r, err := Throughput(context.Background(), addr, 4, shortRun)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors.Total() != 0 || r.Bytes <= 0 || r.Elapsed < shortRun || r.Gbps() <= 0 {
		t.Fatalf("Throughput = %+v, want bytes delivered over at least %v and no errors", r, shortRun)
	}
}

func TestThroughputNeedsAConnection(t *testing.T) {
	if _, err := Throughput(context.Background(), closedAddr(t), 2, shortRun); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Throughput to a closed port error = %v, want ECONNREFUSED", err)
	}
	if _, err := Throughput(context.Background(), closedAddr(t), 0, shortRun); err == nil {
		t.Fatal("Throughput with 0 connections succeeded, want an error")
	}
}

func TestConnRate(t *testing.T) {
	addr := startServer(t, backend.Echo)
	r, err := ConnRate(context.Background(), addr, 4, shortRun)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns == 0 || r.Errors.Total() != 0 || r.PerSecond() <= 0 {
		t.Fatalf("ConnRate = %+v, want connections and no errors", r)
	}
}

func TestConnRateCountsErrorsByKind(t *testing.T) {
	r, err := ConnRate(context.Background(), closedAddr(t), 2, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns != 0 || r.Errors[KindRefused] == 0 || r.Errors.Total() != r.Errors[KindRefused] {
		t.Fatalf("ConnRate to a closed port = %+v, want only refused errors", r)
	}

	// A server that closes at once gives EOF instead of the echo.
	addr := startServer(t, func(c *net.TCPConn) { c.Close() })
	r, err = ConnRate(context.Background(), addr, 2, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns != 0 || r.Errors.Total() == 0 || r.Errors[KindRefused] != 0 {
		t.Fatalf("ConnRate to a closing server = %+v, want only failures other than refused", r)
	}
}

func TestConnRateDetectsCorruptEcho(t *testing.T) {
	addr := startServer(t, func(c *net.TCPConn) {
		defer c.Close()
		buf := make([]byte, MessageSize)
		if _, err := io.ReadFull(c, buf); err == nil {
			buf[0] ^= 1
			_, _ = c.Write(buf)
		}
	})
	r, err := ConnRate(context.Background(), addr, 1, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns != 0 || r.Errors[KindCorrupt] == 0 {
		t.Fatalf("ConnRate to a corrupting server = %+v, want corrupt errors", r)
	}
}

func TestPingPong(t *testing.T) {
	addr := startServer(t, backend.Echo)
	for _, conns := range []int{1, 8} {
		r, err := PingPong(context.Background(), addr, conns, shortRun)
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || uint64(r.Requests) != r.Latency.Count() || r.Errors.Total() != 0 {
			t.Fatalf("PingPong(%d) = %+v, want one latency sample per request and no errors", conns, r)
		}
		if p50, p99 := r.Latency.Quantile(0.5), r.Latency.Quantile(0.99); p50 <= 0 || p99 < p50 {
			t.Fatalf("PingPong(%d) p50 %v, p99 %v; want 0 < p50 <= p99", conns, p50, p99)
		}
	}
}

func TestPingPongCountsADeadConnection(t *testing.T) {
	addr := startServer(t, func(c *net.TCPConn) {
		_, _ = io.ReadFull(c, make([]byte, MessageSize))
		_ = c.SetLinger(0)
		c.Close()
	})
	r, err := PingPong(context.Background(), addr, 2, shortRun)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors.Total() != 2 {
		t.Fatalf("PingPong to a resetting server = %+v, want 2 failed connections", r)
	}
}

func TestPingPongStopsWithContext(t *testing.T) {
	addr := startServer(t, backend.Echo)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PingPong(ctx, addr, 2, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("PingPong with a cancelled context error = %v, want context.Canceled", err)
	}
}

func TestOpenIdleHoldsConnections(t *testing.T) {
	addr := startServer(t, backend.Echo)
	set, err := OpenIdle(context.Background(), addr, 100)
	defer set.Close()
	if err != nil {
		t.Fatal(err)
	}
	if set.Held() != 100 || set.Errors.Total() != 0 {
		t.Fatalf("OpenIdle held %d with errors %v, want 100 and none", set.Held(), set.Errors)
	}
}

func TestOpenIdleGivesUpAfterFailures(t *testing.T) {
	addr := startServer(t, func(c *net.TCPConn) { c.Close() })
	set, err := OpenIdle(context.Background(), addr, 10_000)
	defer set.Close()
	if err != nil {
		t.Fatal(err)
	}
	if set.Held() != 0 || set.Errors.Total() < idleMaxFailures || set.Errors.Total() >= idleMaxFailures+idleOpeners {
		t.Fatalf("OpenIdle to a closing server held %d, errors %v; want 0 held and about %d failures",
			set.Held(), set.Errors, idleMaxFailures)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("dialing: %w", syscall.ECONNREFUSED), KindRefused},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, KindReset},
		{fmt.Errorf("x: %w", os.ErrDeadlineExceeded), KindTimeout},
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), KindEOF},
		{io.EOF, KindEOF},
		{syscall.EADDRNOTAVAIL, KindNoAddr},
		{syscall.EMFILE, KindNoFiles},
		{syscall.EPIPE, KindBrokenPipe},
		{errCorrupt, KindCorrupt},
		{errors.New("something"), KindOther},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
