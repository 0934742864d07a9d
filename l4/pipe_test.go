package l4

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPipePoolReusesEmptyPipes(t *testing.T) {
	pp := newPipePool()
	defer pp.close()
	p, err := pp.get(0)
	if err != nil {
		t.Fatal(err)
	}
	pp.put(p, 0)
	q, err := pp.get(0)
	if err != nil {
		t.Fatal(err)
	}
	if q != p {
		t.Fatal("an empty pipe given back was not reused")
	}
	if got := pp.open.Load(); got != 1 {
		t.Fatalf("%d pipes open, want 1", got)
	}
	pp.put(q, 0)
	allocs := testing.AllocsPerRun(100, func() {
		p, _ := pp.get(3)
		pp.put(p, 3)
	})
	if allocs != 0 {
		t.Fatalf("taking and giving back a pooled pipe allocates %.1f times", allocs)
	}
}

func TestPipePoolClosesPipesWithBytes(t *testing.T) {
	pp := newPipePool()
	defer pp.close()
	p, err := pp.get(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(p.w, []byte("left over")); err != nil {
		t.Fatal(err)
	}
	p.data = len("left over")
	pp.put(p, 0)
	if got := pp.open.Load(); got != 0 {
		t.Fatalf("%d pipes open after giving back one with bytes in it, want 0", got)
	}
	q, err := pp.get(0)
	if err != nil {
		t.Fatal(err)
	}
	var buf [16]byte
	if n, err := unix.Read(q.r, buf[:]); err != unix.EAGAIN {
		t.Fatalf("a fresh pipe read %d bytes (%v), want none", n, err)
	}
	pp.put(q, 0)
}

func TestPipePoolIsBounded(t *testing.T) {
	pp := newPipePool()
	held := make([]*pipe, len(pp.free)+3)
	for i := range held {
		p, err := pp.get(i)
		if err != nil {
			t.Fatal(err)
		}
		held[i] = p
	}
	if got := pp.open.Load(); got != int64(len(held)) {
		t.Fatalf("%d pipes open, want %d", got, len(held))
	}
	for i, p := range held {
		pp.put(p, i)
	}
	if got := pp.open.Load(); got != int64(len(pp.free)) {
		t.Fatalf("%d pipes kept, want the pool's %d", got, len(pp.free))
	}
	pp.close()
	if got := pp.open.Load(); got != 0 {
		t.Fatalf("%d pipes open after close, want 0", got)
	}
	p, err := pp.get(0)
	if err != nil {
		t.Fatal(err)
	}
	pp.put(p, 0)
	if got := pp.open.Load(); got != 0 {
		t.Fatalf("a pipe given back after close stayed open (%d open)", got)
	}
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
	rt, logs := startParkingRuntime(t, testConfig(testService("s", be("b", srv.addr))))
	c := dialService(t, rt, "s")
	if err := c.SetReadBuffer(16 << 10); err != nil {
		t.Fatalf("shrinking the receive buffer: %v", err)
	}
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		t.Fatalf("reading: %v", err)
	}
	waitFor(t, "the download to block with bytes in its pipe", func() bool {
		s := rt.service("s")
		s.mu.Lock()
		defer s.mu.Unlock()
		all := s.conns.all()
		return len(all) == 1 && all[0].down.writing.Load()
	})
	_ = c.SetLinger(0)
	_ = c.Close()
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"end":"client_reset"`) })
	// Every pipe still open is in the pool, empty: the one stuck with bytes
	// was closed, not leaked and not pooled.
	pooled := func() (n int64) {
		for i := range rt.pipes.free {
			if p := rt.pipes.free[i].p.Load(); p != nil {
				if p.data != 0 {
					t.Errorf("a pooled pipe holds %d bytes", p.data)
				}
				n++
			}
		}
		return n
	}
	waitFor(t, "the stuck pipe to be closed", func() bool { return rt.pipes.open.Load() == pooled() })
}
