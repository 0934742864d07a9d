package backend

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/balancel4/balance-l4/bench/internal/benchtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startSet runs Run in the background and returns the addresses and a stop func
// that reports Run's error.
func startSet(t *testing.T, echo, sink int) (Addrs, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, echo, sink, func(a Addrs) { ready <- a }) }()
	select {
	case a := <-ready:
		return a, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	return Addrs{}, nil
}

func TestEchoRepliesUntilHalfClose(t *testing.T) {
	addrs, stop := startSet(t, 1, 0)
	c := benchtest.Dial(t, addrs.Echo[0])
	defer c.Close()

	for i := range 3 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 64)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo %d = %q, want %q", i, got, msg)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close read %q, %v; want EOF", rest, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestSinkCountsBytes(t *testing.T) {
	addrs, stop := startSet(t, 0, 2)
	if len(addrs.Sink) != 2 || addrs.Sink[0] == addrs.Sink[1] {
		t.Fatalf("sinks = %v, want two distinct addresses", addrs.Sink)
	}
	c := benchtest.Dial(t, addrs.Sink[1])
	defer c.Close()

	const total = 3<<20 + 17
	chunk := make([]byte, 1<<20)
	for left := total; left > 0; {
		n := min(left, len(chunk))
		if _, err := c.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != SinkReplyLen || binary.BigEndian.Uint64(reply) != total {
		t.Fatalf("sink reply = %x, want %d as 8 bytes", reply, total)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeClosesOpenConnectionsOnStop(t *testing.T) {
	addrs, stop := startSet(t, 1, 0)
	c := benchtest.Dial(t, addrs.Echo[0])
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes after stop, want the server to have closed", n)
	}
}

func TestRunRejectsNoServers(t *testing.T) {
	if err := Run(context.Background(), 0, 0, func(Addrs) {}); err == nil {
		t.Fatal("Run(0, 0) succeeded, want an error")
	}
}
