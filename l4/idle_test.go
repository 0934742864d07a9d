package l4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// runtimeGoroutines counts the goroutines running a method of the runtime's
// types (l4.(*service), l4.(*proxyConn), its workers …), the test's backend
// servers aside.
func runtimeGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "balance-l4/l4.(*") && !strings.Contains(g, "(*backendServer)") {
			count++
		}
	}
	return count
}

// TestIdleConnectionsHoldNothing: spliced connections hold no goroutine,
// and idle ones no buffer and no pipe; bytes either way move on them many
// times over, with exact counters, and half-close works on them.
func TestIdleConnectionsHoldNothing(t *testing.T) {
	srv := startBackend(t, echo)
	rt, logs := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	const conns = 20
	before := runtimeGoroutines()
	clients := pingedConns(t, rt, "s", conns, "hello")
	idle := func() bool {
		st := rt.eng.Stats()
		return st.Conns == conns && st.HeldBuffers == 0 && st.HeldPipes == 0 && runtimeGoroutines() <= before
	}
	waitFor(t, "idle connections to hold nothing", idle)
	for range 3 {
		for _, c := range clients {
			echoOn(t, c, "again")
		}
		waitFor(t, "idle connections to hold nothing again", idle)
	}
	for _, c := range clients {
		if err := c.CloseWrite(); err != nil {
			t.Fatalf("closing the write side: %v", err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("reading to EOF after a half-close: %v", err)
		}
	}
	waitFor(t, "the connections to end", func() bool { return serviceView(t, rt, "s").ActiveConnections == 0 })
	const perConn = int64(len("hello") + 3*len("again"))
	b := backendView(t, rt, "s", "b")
	if b.BytesIn != conns*perConn || b.BytesOut != conns*perConn {
		t.Fatalf("bytes in/out = %d/%d, want %d each", b.BytesIn, b.BytesOut, conns*perConn)
	}
	if got := strings.Count(logs.String(), `"end":"client_fin"`); got != conns {
		t.Fatalf("%d access log lines end with client_fin, want %d:\n%s", got, conns, logs)
	}
	if st := rt.eng.Stats(); st.Conns != 0 {
		t.Fatalf("the engine still has %d connections", st.Conns)
	}
}

// TestIdleConnectionsAbort: closing idle connections from outside (an
// operator's disconnect, the idle timeout, a forced shutdown) ends each one
// exactly once.
func TestIdleConnectionsAbort(t *testing.T) {
	t.Run("disconnect", func(t *testing.T) {
		srv := startBackend(t, echo)
		rt, logs := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))
		const conns = 5
		clients := pingedConns(t, rt, "s", conns, "hi")
		n, err := rt.Disconnect("s", "b", "test")
		if err != nil || n != conns {
			t.Fatalf("Disconnect = %d, %v; want %d, nil", n, err, conns)
		}
		for _, c := range clients {
			if _, err := io.Copy(io.Discard, c); !isReset(err) {
				t.Fatalf("client read error = %v, want a connection reset", err)
			}
		}
		waitFor(t, "the connections to end", func() bool { return serviceView(t, rt, "s").ActiveConnections == 0 })
		if got := strings.Count(logs.String(), `"end":"disconnected"`); got != conns {
			t.Fatalf("%d access log lines end with disconnected, want %d", got, conns)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		srv := startBackend(t, echo)
		logs := &syncBuffer{}
		rt := NewRuntime(Options{Log: zerolog.New(logs)})
		t.Cleanup(func() { _, _ = rt.Shutdown(context.Background()) }) // after a failure; a second Shutdown does nothing
		if _, err := rt.Apply(testConfig(testService("s", be("b", srv.addr)))); err != nil {
			t.Fatalf("applying configuration: %v", err)
		}
		const conns = 5
		pingedConns(t, rt, "s", conns, "hi")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		forced, err := rt.Shutdown(ctx)
		if forced != conns || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %d, %v; want %d, deadline exceeded", forced, err, conns)
		}
		if got := strings.Count(logs.String(), `"end":"shutdown"`); got != conns {
			t.Fatalf("%d access log lines end with shutdown when Shutdown returned, want %d", got, conns)
		}
	})
}

// TestCleanCloseWhileWritingIsNoReset: a backend that got our FIN, answered
// and closed while its answer is still stuck on its way to a slow client:
// the client gets every byte, then EOF, and the end is the client's FIN.
func TestCleanCloseWhileWritingIsNoReset(t *testing.T) {
	const size = 8 << 20
	answered := make(chan struct{})
	srv := startBackend(t, func(c *net.TCPConn) {
		defer close(answered)
		_, _ = io.Copy(io.Discard, c)
		_ = c.SetWriteDeadline(time.Now().Add(testTimeout))
		_, _ = c.Write(payload(size, 7))
	})
	rt, logs := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))
	c := dialService(t, rt, "s")
	if err := c.SetReadBuffer(16 << 10); err != nil {
		t.Fatalf("shrinking the receive buffer: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("closing the write side: %v", err)
	}
	waitFor(t, "the download to be stuck with bytes held", func() bool {
		st := rt.eng.Stats()
		return st.HeldBuffers+st.HeldPipes > 0
	})
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, payload(size, 7)) {
		t.Fatalf("got %d bytes, not the %d the backend sent", len(got), size)
	}
	<-answered
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"client_fin"`) })
}

// TestAbortWithBytesInPipe: a client that resets while its download is stuck
// in a pipe (the client does not read) ends the connection, and the pipe with
// those bytes is closed rather than pooled.
func TestAbortWithBytesInPipe(t *testing.T) {
	const size = 32 << 20
	srv := startBackend(t, func(c *net.TCPConn) {
		_ = c.SetWriteDeadline(time.Now().Add(testTimeout))
		_, _ = c.Write(payload(size, 8))
	})
	rt, logs := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))
	c := dialService(t, rt, "s")
	if err := c.SetReadBuffer(16 << 10); err != nil {
		t.Fatalf("shrinking the receive buffer: %v", err)
	}
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		t.Fatalf("reading: %v", err)
	}
	waitFor(t, "the download to block with bytes in its pipe", func() bool { return rt.eng.Stats().HeldPipes == 1 })
	open := rt.eng.Stats().OpenPipes
	_ = c.SetLinger(0)
	_ = c.Close()
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"client_reset"`) })
	waitFor(t, "the stuck pipe to be closed", func() bool {
		st := rt.eng.Stats()
		return st.HeldPipes == 0 && st.OpenPipes == open-1
	})
}
