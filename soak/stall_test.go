package soak

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStalledBackendBlocksNothingElse: a backend accepts and never reads. A
// client pushing 64 MiB to it stalls, and only it: other clients through the
// same service to another backend work normally, and new connections are
// accepted meanwhile. When the stalled client gives up, the proxy lets go of
// both sides.
func TestStalledBackendBlocksNothingElse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	sink := startServer(t, func(c *net.TCPConn) {
		defer c.Close()
		<-release // never read
	})
	t.Cleanup(unblock) // before the server's cleanup, which waits for handlers
	peer := startServer(t, echo)
	svc, admin := freePort(t), freePort(t)
	startBalance(t, fmt.Sprintf(`
[admin]
listen = %q
[log]
access_log = false
[health_check]
enabled = false # its connections would sit in the sink beside the pusher's
[[services]]
name = "stall"
listen = %q
[[services.backends]]
name = "sink"
address = %q
weight = 1
[[services.backends]]
name = "echo"
address = %q
weight = 0
`, admin, svc, sink.Addr(), peer.Addr()), admin)
	a := NewAdminClient(admin, "")

	// The pusher lands on the sink (the only backend with weight).
	pusher, err := net.DialTimeout("tcp", svc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	const total = 64 << 20
	var pushed atomic.Int64
	pushDone := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		pusher.SetWriteDeadline(time.Now().Add(60 * time.Second))
		for pushed.Load() < total {
			n, err := pusher.Write(chunk)
			pushed.Add(int64(n))
			if err != nil {
				pushDone <- err
				return
			}
		}
		pushDone <- nil
	}()
	waitFor(t, "the sink to hold the pusher's connection", func() bool { return sink.open() == 1 })
	// Wait until the push stops moving: every buffer on the way is full.
	var last int64 = -1
	waitFor(t, "the push to stall", func() bool {
		now := pushed.Load()
		stalled := now == last && now > 0
		last = now
		time.Sleep(200 * time.Millisecond)
		return stalled
	})
	if last >= total {
		t.Fatalf("the pusher wrote all %d bytes to a backend that never reads", total)
	}
	t.Logf("push stalled after %d MiB in buffers", last>>20)

	setWeight(t, a, "stall", "sink", 0)
	setWeight(t, a, "stall", "echo", 1)

	// 20 concurrent clients with 1 MiB each, and 50 quick new connections.
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { errs <- bulkRoundTrip(svc, payload, i) })
	}
	for i := range 50 {
		if err := dialRoundTrip(svc, fmt.Sprintf("quick %d", i)); err != nil {
			t.Errorf("quick connection %d while a backend stalls: %v", i, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("bulk client while a backend stalls: %v", err)
		}
	}
	if now := pushed.Load(); now != last {
		t.Errorf("the stalled push moved from %d to %d bytes, though the sink never reads", last, now)
	}

}

// TestClientResetReachesStalledBackend: the client of a stalled upload gives
// up with a reset. SPEC §3: "A reset on one side resets the other", so the
// proxy must let go of the backend's connection too, not hold it until the
// idle timeout (an hour by default).
//
// Regression: l4's upload direction sat in splice(2) writing to the backend
// and nothing watched the client's socket meanwhile; the connection's watch
// timer now looks for a reset while a write is blocked (l4/idle.go).
func TestClientResetReachesStalledBackend(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	sink := startServer(t, func(c *net.TCPConn) {
		defer c.Close()
		<-release // never read
	})
	t.Cleanup(func() { close(release) })
	svc, admin := freePort(t), freePort(t)
	startBalance(t, fmt.Sprintf(`
[admin]
listen = %q
[health_check]
enabled = false
[[services]]
name = "stall"
listen = %q
[[services.backends]]
name = "sink"
address = %q
`, admin, svc, sink.Addr()), admin)
	a := NewAdminClient(admin, "")

	pusher, err := net.DialTimeout("tcp", svc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	pushDone := make(chan int64, 1)
	go func() {
		var n int64
		chunk := make([]byte, 1<<20)
		pusher.SetWriteDeadline(time.Now().Add(3 * time.Second)) // long past filling every buffer
		for n < 64<<20 {
			k, err := pusher.Write(chunk)
			n += int64(k)
			if err != nil {
				break
			}
		}
		pushDone <- n
	}()
	if n := <-pushDone; n >= 64<<20 {
		t.Fatalf("wrote all %d bytes to a backend that never reads", n)
	}
	waitFor(t, "the sink to hold the connection", func() bool { return sink.open() == 1 })
	pusher.(*net.TCPConn).SetLinger(0)
	pusher.Close() // RST
	waitFor(t, "the proxy to let go of the stalled backend after the client's reset", func() bool {
		return getService(t, a, "stall").ActiveConnections == 0
	})
}

// bulkRoundTrip sends payload on a new connection, half-closes and expects
// exactly the payload back.
func bulkRoundTrip(addr string, payload []byte, i int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("client %d: dialing: %w", i, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("client %d: reading echo: %w", i, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("client %d: writing: %w", i, err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("client %d: echo of %d bytes differs (%d bytes back)", i, len(payload), len(got))
	}
	return nil
}
