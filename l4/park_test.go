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
	"golang.org/x/sys/unix"

	"github.com/balancel4/balance-l4/config"
)

// parkTick is the watch timer's period in these tests: a connection parks a
// tick or two after its last byte.
const parkTick = 5 * time.Millisecond

// startParkingRuntime is startRuntime with a fast watch timer.
func startParkingRuntime(t *testing.T, cfg *config.Config) (*Runtime, *syncBuffer) {
	t.Helper()
	return startRuntime(t, cfg, func(rt *Runtime) { rt.stallCheck = parkTick })
}

// parkedDirections counts the service's parked directions.
func parkedDirections(rt *Runtime, service string) int {
	s := rt.service(service)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.conns.all() {
		c.mu.Lock()
		for _, d := range [2]*direction{&c.up, &c.down} {
			if d.parked {
				n++
			}
		}
		c.mu.Unlock()
	}
	return n
}

// copyingGoroutines counts goroutines running a direction's copy loop.
func copyingGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "l4.(*direction).run(")
}

// ping writes msg and reads the echo back.
func ping(t *testing.T, c *net.TCPConn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading the echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
}

// TestIdleConnectionsParkAndResume: idle connections hold no copying
// goroutine; bytes either way resume them, many times, with exact counters,
// and half-close still works on a parked connection.
func TestIdleConnectionsParkAndResume(t *testing.T) {
	srv := startBackend(t, echo)
	rt, logs := startParkingRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	const conns = 20
	clients := make([]*net.TCPConn, conns)
	for i := range clients {
		clients[i] = dialService(t, rt, "s")
		ping(t, clients[i], "hello")
	}
	waitFor(t, "every direction to park", func() bool { return parkedDirections(rt, "s") == 2*conns })
	if n := copyingGoroutines(); n != 0 {
		t.Fatalf("%d goroutines copy for %d parked connections, want 0", n, conns)
	}

	// Resume and park again, several times over.
	for range 3 {
		for _, c := range clients {
			ping(t, c, "again")
		}
		waitFor(t, "every direction to park again", func() bool { return parkedDirections(rt, "s") == 2*conns })
	}

	// Half-close from the client while parked: the backend echoes EOF back.
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
	waitFor(t, "the parker to close its epoll instance", func() bool {
		rt.parker.mu.Lock()
		defer rt.parker.mu.Unlock()
		return rt.parker.ep == nil
	})
	waitFor(t, "the parker goroutine to end", func() bool { return rt.parker.loops.Load() == 0 })
	if strings.Contains(logs.String(), "waiting for idle connections stopped") {
		t.Fatalf("closing the parker's epoll instance was logged as a failure:\n%s", logs)
	}
}

// TestParkedResetPropagates: a reset on either side of a parked connection
// resets the other side.
func TestParkedResetPropagates(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		readErr := make(chan error, 1)
		srv := startBackend(t, func(c *net.TCPConn) {
			_, _ = c.Write([]byte("x"))
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			_, err := io.Copy(io.Discard, c)
			readErr <- err
		})
		rt, logs := startParkingRuntime(t, testConfig(testService("s", be("b", srv.addr))))
		c := dialService(t, rt, "s")
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			t.Fatalf("reading: %v", err)
		}
		waitFor(t, "both directions to park", func() bool { return parkedDirections(rt, "s") == 2 })
		_ = c.SetLinger(0)
		_ = c.Close()
		select {
		case err := <-readErr:
			if !isReset(err) {
				t.Fatalf("backend read error = %v, want a connection reset", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("backend never saw the reset")
		}
		waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"client_reset"`) })
	})
	t.Run("backend", func(t *testing.T) {
		resetNow := make(chan struct{})
		srv := startBackend(t, func(c *net.TCPConn) {
			_, _ = c.Write([]byte("x"))
			select {
			case <-resetNow:
			case <-time.After(testTimeout):
			}
			_ = c.SetLinger(0)
		})
		rt, logs := startParkingRuntime(t, testConfig(testService("s", be("b", srv.addr))))
		c := dialService(t, rt, "s")
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			t.Fatalf("reading: %v", err)
		}
		waitFor(t, "both directions to park", func() bool { return parkedDirections(rt, "s") == 2 })
		close(resetNow)
		if _, err := io.Copy(io.Discard, c); !isReset(err) {
			t.Fatalf("client read error = %v, want a connection reset", err)
		}
		waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"backend_reset"`) })
	})
}

// TestParkedConnectionsAbort: closing parked connections from outside (an
// operator's disconnect, the idle timeout, a forced shutdown) ends each one
// exactly once.
func TestParkedConnectionsAbort(t *testing.T) {
	t.Run("disconnect", func(t *testing.T) {
		srv := startBackend(t, echo)
		rt, logs := startParkingRuntime(t, testConfig(testService("s", be("b", srv.addr))))
		const conns = 5
		clients := make([]*net.TCPConn, conns)
		for i := range clients {
			clients[i] = dialService(t, rt, "s")
			ping(t, clients[i], "hi")
		}
		waitFor(t, "every direction to park", func() bool { return parkedDirections(rt, "s") == 2*conns })
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
	t.Run("idle timeout", func(t *testing.T) {
		srv := startBackend(t, echo)
		sc := testService("s", be("b", srv.addr))
		sc.Timeouts.Idle = 100 * time.Millisecond
		rt, logs := startParkingRuntime(t, testConfig(sc))
		c := dialService(t, rt, "s")
		ping(t, c, "hi")
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("client read error = %v, want EOF", err)
		}
		waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"idle_timeout"`) })
		if got := strings.Count(logs.String(), `"end":`); got != 1 {
			t.Fatalf("%d access log lines, want 1", got)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		srv := startBackend(t, echo)
		logs := &syncBuffer{}
		rt := NewRuntime(Options{Log: zerolog.New(logs)})
		rt.stallCheck = parkTick
		if _, err := rt.Apply(testConfig(testService("s", be("b", srv.addr)))); err != nil {
			t.Fatalf("applying configuration: %v", err)
		}
		const conns = 5
		for range conns {
			ping(t, dialService(t, rt, "s"), "hi")
		}
		waitFor(t, "every direction to park", func() bool { return parkedDirections(rt, "s") == 2*conns })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		forced, err := rt.Shutdown(ctx)
		if forced != conns || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %d, %v; want %d, deadline exceeded", forced, err, conns)
		}
		// Shutdown waited for the connections, not for goroutines.
		if got := strings.Count(logs.String(), `"end":"shutdown"`); got != conns {
			t.Fatalf("%d access log lines end with shutdown when Shutdown returned, want %d", got, conns)
		}
	})
}

// TestCleanCloseWhileWritingIsNoReset: a backend that got our FIN, answered
// and closed leaves its socket in TCP_CLOSE (time-wait); the watch timer,
// ticking while the answer is still stuck on its way to a slow client, must
// not take that for a reset.
//
// The answer must fit what the proxy receives (for the backend's FIN to
// arrive after it) yet not what the way to the client holds (for the
// download to stay stuck), so the test fixes the buffers on both ways: the
// kernel would grow the proxy's send buffer past the answer and keep its
// receive buffer small once the proxy stops reading.
func TestCleanCloseWhileWritingIsNoReset(t *testing.T) {
	const size = 256 << 10
	answered := make(chan struct{})
	srv := startBackend(t, func(c *net.TCPConn) {
		defer close(answered)
		_, _ = io.Copy(io.Discard, c)
		_, _ = c.Write(payload(size, 7))
	})
	rt, logs := startParkingRuntime(t, testConfig(testService("s", be("b", srv.addr))))
	c := dialService(t, rt, "s")
	if err := c.SetReadBuffer(16 << 10); err != nil {
		t.Fatalf("shrinking the receive buffer: %v", err)
	}
	pc := onlyConn(t, rt, "s")
	if err := pc.client.SetWriteBuffer(16 << 10); err != nil {
		t.Fatalf("shrinking the proxy's send buffer: %v", err)
	}
	raw, err := pc.backend.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		optErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 200<<10)
	}); err != nil || optErr != nil {
		t.Fatalf("growing the proxy's receive buffer: %v, %v", err, optErr)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("closing the write side: %v", err)
	}
	select {
	case <-answered:
	case <-time.After(testTimeout):
		t.Fatal("the backend never answered")
	}
	// The case at hand: the backend's socket closed cleanly, the download
	// stuck writing to the client.
	waitFor(t, "the backend's socket to close", func() bool { return tcpClosed(pc.backend) })
	waitFor(t, "the download to be stuck writing to the client", pc.down.writing.Load)
	// Let the watch timer tick a few times while the download is stuck.
	time.Sleep(10 * parkTick)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, payload(size, 7)) {
		t.Fatalf("got %d bytes, not the %d the backend sent", len(got), size)
	}
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"client_fin"`) })
}

// onlyConn waits for svc's one connection to have its backend and returns it.
func onlyConn(t *testing.T, rt *Runtime, svc string) *proxyConn {
	t.Helper()
	s := rt.service(svc)
	var pc *proxyConn
	waitFor(t, "the connection to its backend", func() bool {
		s.mu.Lock()
		conns := s.conns.all()
		s.mu.Unlock()
		if len(conns) != 1 {
			return false
		}
		pc = conns[0]
		pc.mu.Lock()
		defer pc.mu.Unlock()
		return pc.backend != nil
	})
	return pc
}
