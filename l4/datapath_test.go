package l4

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// TestHalfCloseClientFirst: the client sends 1 MiB and shuts down writing;
// the backend reads to EOF and only then replies with 1 MiB, which the
// client still receives whole.
func TestHalfCloseClientFirst(t *testing.T) {
	up, down := payload(1<<20, 1), payload(1<<20, 2)
	got := make(chan []byte, 1)
	srv := startBackend(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		got <- b
		_, _ = c.Write(down)
		_ = c.CloseWrite()
	})
	rt, _ := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	c := dialService(t, rt, "s")
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(up)
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if !bytes.Equal(<-got, up) {
		t.Fatal("the backend did not receive the upload intact")
	}
	if !bytes.Equal(reply, down) {
		t.Fatalf("the reply after the client's FIN: got %d bytes, want %d intact", len(reply), len(down))
	}
	waitFor(t, "the connection to end", func() bool { return backendView(t, rt, "s", "b").ActiveConnections == 0 })
	v := backendView(t, rt, "s", "b")
	if v.BytesIn != int64(len(up)) || v.BytesOut != int64(len(down)) {
		t.Fatalf("bytes in/out = %d/%d, want %d/%d", v.BytesIn, v.BytesOut, len(up), len(down))
	}
}

// TestHalfCloseBackendFirst: the backend sends 1 MiB and shuts down writing
// first; the client reads to EOF and can still send 1 MiB, which arrives.
func TestHalfCloseBackendFirst(t *testing.T) {
	up, down := payload(1<<20, 3), payload(1<<20, 4)
	got := make(chan []byte, 1)
	srv := startBackend(t, func(c *net.TCPConn) {
		_, _ = c.Write(down)
		_ = c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- b
	})
	rt, _ := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	c := dialService(t, rt, "s")
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if !bytes.Equal(reply, down) {
		t.Fatalf("got %d bytes, want %d intact", len(reply), len(down))
	}
	if _, err := c.Write(up); err != nil {
		t.Fatalf("sending after the backend's FIN: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("closing write: %v", err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, up) {
			t.Fatalf("backend got %d bytes, want %d intact", len(b), len(up))
		}
	case <-time.After(testTimeout):
		t.Fatal("the backend never got the client's data")
	}
}

// TestLargeTransferChecksummed moves 64 MiB each way and compares SHA-256
// sums and the byte counters.
func TestLargeTransferChecksummed(t *testing.T) {
	const size = 64 << 20
	sums := make(chan [32]byte, 1)
	srv := startBackend(t, func(c *net.TCPConn) {
		var mode [1]byte
		if _, err := io.ReadFull(c, mode[:]); err != nil {
			return
		}
		if mode[0] == 'u' { // upload: hash what arrives, report the sum
			h := sha256.New()
			_, _ = io.Copy(h, c)
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			sums <- sum
			_, _ = c.Write(sum[:])
			return
		}
		_, _ = c.Write(payload(size, 5)) // download
	})
	rt, _ := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	data := payload(size, 6)
	c := dialService(t, rt, "s")
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write(append([]byte{'u'}, data...)); err != nil {
		t.Fatalf("uploading: %v", err)
	}
	_ = c.CloseWrite()
	var echoed [32]byte
	if _, err := io.ReadFull(c, echoed[:]); err != nil {
		t.Fatalf("reading the sum: %v", err)
	}
	if want := sha256.Sum256(data); <-sums != want || echoed != want {
		t.Fatal("upload checksum mismatch")
	}

	c2 := dialService(t, rt, "s")
	_ = c2.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c2.Write([]byte{'d'}); err != nil {
		t.Fatalf("asking for the download: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, c2)
	if err != nil || n != size {
		t.Fatalf("downloading: %d bytes, %v", n, err)
	}
	if got, want := [32]byte(h.Sum(nil)), sha256.Sum256(payload(size, 5)); got != want {
		t.Fatal("download checksum mismatch")
	}
	_ = c.Close()
	_ = c2.Close()
	waitFor(t, "both connections to end", func() bool { return backendView(t, rt, "s", "b").ActiveConnections == 0 })
	v := backendView(t, rt, "s", "b")
	if v.BytesIn != size+2 || v.BytesOut != size+32 {
		t.Fatalf("bytes in/out = %d/%d, want %d/%d", v.BytesIn, v.BytesOut, size+2, size+32)
	}
}

// TestResetFromClientResetsBackend: an RST from the client reaches the
// backend as an RST.
func TestResetFromClientResetsBackend(t *testing.T) {
	readErr := make(chan error, 1)
	srv := startBackend(t, func(c *net.TCPConn) {
		_, _ = c.Write([]byte("x"))
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		_, err := io.Copy(io.Discard, c)
		readErr <- err
	})
	rt, logs := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	c := dialService(t, rt, "s")
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		t.Fatalf("reading: %v", err)
	}
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
	waitFor(t, "the access log line", func() bool { return bytes.Contains([]byte(logs.String()), []byte(`"end":"client_reset"`)) })
}

// TestResetFromBackendResetsClient: an RST from the backend reaches the
// client as an RST.
func TestResetFromBackendResetsClient(t *testing.T) {
	srv := startBackend(t, func(c *net.TCPConn) {
		_, _ = c.Write([]byte("x"))
		var one [1]byte
		_, _ = io.ReadFull(c, one[:])
		_ = c.SetLinger(0)
	})
	rt, logs := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))

	c := dialService(t, rt, "s")
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		t.Fatalf("reading: %v", err)
	}
	if _, err := c.Write([]byte("y")); err != nil {
		t.Fatalf("writing: %v", err)
	}
	_, err := io.Copy(io.Discard, c)
	if !isReset(err) {
		t.Fatalf("client read error = %v, want a connection reset", err)
	}
	waitFor(t, "the access log line", func() bool { return bytes.Contains([]byte(logs.String()), []byte(`"end":"backend_reset"`)) })
}

// TestIdleTimeoutCloses: a connection with no bytes either way is closed
// after timeouts.idle; one that keeps talking is not.
func TestIdleTimeoutCloses(t *testing.T) {
	srv := startBackend(t, echo)
	sc := testService("s", be("b", srv.addr))
	sc.Timeouts.Idle = 200 * time.Millisecond
	rt, logs := startRuntime(t, testConfig(sc))

	busy := dialService(t, rt, "s")
	idle := dialService(t, rt, "s")
	if _, err := idle.Write([]byte("hi")); err != nil {
		t.Fatalf("writing: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(idle, buf); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	// The idle connection ends with EOF; meanwhile the busy one talks every
	// 50ms (a quarter of the timeout) and must survive.
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, idle)
		done <- err
	}()
	var idleErr error
	ended := false
	for i := 0; i < 200 && !ended; i++ {
		if _, err := busy.Write([]byte("p")); err != nil {
			t.Fatalf("busy connection write %d: %v", i, err)
		}
		if _, err := io.ReadFull(busy, buf[:1]); err != nil {
			t.Fatalf("busy connection read %d: %v", i, err)
		}
		select {
		case idleErr = <-done:
			ended = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !ended {
		t.Fatal("the idle connection was not closed")
	}
	if idleErr != nil { // io.Copy reads to EOF: an idle timeout closes without a reset
		t.Fatalf("idle connection ended with %v, want EOF", idleErr)
	}
	// The busy one still works.
	if _, err := busy.Write([]byte("p")); err != nil {
		t.Fatalf("busy connection after the idle close: %v", err)
	}
	if _, err := io.ReadFull(busy, buf[:1]); err != nil {
		t.Fatalf("busy connection after the idle close: %v", err)
	}
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"idle_timeout"`) })
	if got := strings.Count(logs.String(), `"end":`); got != 1 {
		t.Fatalf("%d access log lines, want the idle connection's alone:\n%s", got, logs)
	}
}

// openPipes counts this process's open pipe descriptors.
func openPipes(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}

// TestIdleConnectionsHoldNoPipe: a proxied connection that is waiting for
// bytes holds no splice pipe (Go's io.Copy would hold one per direction, two
// descriptors each, for the connection's whole life).
func TestIdleConnectionsHoldNoPipe(t *testing.T) {
	srv := startBackend(t, echo)
	rt, _ := startRuntime(t, testConfig(testService("s", be("a", srv.addr))))
	before := openPipes(t)
	// Pipes Go pools for splice are closed only after a garbage collection
	// (and the race detector makes the pool drop some at random).
	settle := func() {
		runtime.GC()
		runtime.GC()
	}
	const conns = 50
	buf := make([]byte, 4)
	for range conns {
		c := dialService(t, rt, "s")
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the connections", func() bool { return serviceView(t, rt, "s").ActiveConnections == conns })
	// Once the pool is collected, no pipe is left: fifty idle connections
	// held with io.Copy would keep 200 pipe descriptors open.
	waitFor(t, "pooled pipes to be released", func() bool {
		settle()
		return openPipes(t)-before <= 4
	})
}

// TestMixedMessageSizesEchoIntact alternates small messages, which are read
// and written, with bulk ones, which switch a direction to splice and back,
// through an echo backend, and checks every byte and the counters.
func TestMixedMessageSizesEchoIntact(t *testing.T) {
	const copyBufSize = 16 << 10 // the engine's shared buffer: a read that fills it switches to splice
	srv := startBackend(t, echo)
	rt, _ := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))
	c := dialService(t, rt, "s")
	_ = c.SetDeadline(time.Now().Add(time.Minute))

	sizes := []int{1, 64, copyBufSize - 1, copyBufSize, copyBufSize + 1, 3 << 20, 64, 1, 1 << 20, 200, 5}
	var total int
	for i, size := range sizes {
		msg := payload(size, uint64(i))
		sent := make(chan error, 1)
		go func() { // a bulk message fills both ways' buffers: send while reading
			_, err := c.Write(msg)
			sent <- err
		}()
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("message %d (%d bytes): reading the echo: %v", i, size, err)
		}
		if err := <-sent; err != nil {
			t.Fatalf("message %d (%d bytes): sending: %v", i, size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("message %d (%d bytes): echo differs", i, size)
		}
		total += size
	}
	_ = c.Close()
	waitFor(t, "the connection to end", func() bool { return backendView(t, rt, "s", "b").ActiveConnections == 0 })
	if v := backendView(t, rt, "s", "b"); v.BytesIn != int64(total) || v.BytesOut != int64(total) {
		t.Fatalf("bytes in/out = %d/%d, want %d each", v.BytesIn, v.BytesOut, total)
	}
}

// TestFINThatCameWithTheDataIsSeen: a client that sends a little and shuts
// down writing at once may have its bytes and its FIN queued together before
// the proxy reads. The read that takes the bytes is short, yet the FIN makes
// no new wake-up: the proxy must still pass it on (the engine reads on
// after a short read when epoll said the peer hung up), or it shows as a
// hang.
func TestFINThatCameWithTheDataIsSeen(t *testing.T) {
	srv := startBackend(t, func(c *net.TCPConn) {
		n, _ := io.Copy(io.Discard, c)
		_, _ = fmt.Fprintf(c, "got %d", n)
	})
	rt, _ := startRuntime(t, testConfig(testService("s", be("b", srv.addr))))
	for i := range 20 {
		c := dialService(t, rt, "s")
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "got 5" {
			t.Fatalf("round %d: the backend answered %q, %v; want \"got 5\" and EOF", i, b, err)
		}
		_ = c.Close()
	}
}
