package engine

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ended records a connection's end.
type ended chan Result

func (e ended) Ended(r Result) { e <- r }

// socketPair returns two connected sockets: one end as a raw non-blocking
// descriptor (what the engine takes), the other as a *net.TCPConn.
func socketPair(t testing.TB) (fd int, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.File()
	_ = c.Close()
	if err != nil {
		t.Fatal(err)
	}
	fd, err = unix.Dup(int(f.Fd()))
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return fd, peer
}

func newEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(Options{Loops: 2, Tick: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestEchoBothWays(t *testing.T) {
	e := newEngine(t)
	cfd, client := socketPair(t)
	bfd, backend := socketPair(t)
	var in, out atomic.Int64
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: bfd, In: &in, Out: &out, Owner: done}); err != nil {
		t.Fatal(err)
	}
	pass(t, client, backend, "hello")
	pass(t, backend, client, "world")
	_ = client.CloseWrite()
	if _, err := io.ReadAll(backend); err != nil {
		t.Fatal(err)
	}
	_ = backend.CloseWrite()
	if _, err := io.ReadAll(client); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Reason != ClientFIN || r.In != 5 || r.Out != 5 {
			t.Fatalf("result %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no end")
	}
}

// pass writes msg on from and checks that to reads exactly it.
func pass(t *testing.T, from, to *net.TCPConn, msg string) {
	t.Helper()
	_ = from.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = to.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(to, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
}

func TestBulkHalfClose(t *testing.T) {
	e := newEngine(t)
	cfd, client := socketPair(t)
	bfd, backend := socketPair(t)
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: bfd, Owner: done}); err != nil {
		t.Fatal(err)
	}
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_ = backend.SetDeadline(time.Now().Add(5 * time.Second))
	up := make([]byte, 1<<20)
	for i := range up {
		up[i] = byte(i * 7)
	}
	go func() {
		_, _ = client.Write(up)
		_ = client.CloseWrite()
	}()
	got, err := io.ReadAll(backend)
	t.Logf("backend got %d, %v", len(got), err)
	if len(got) != len(up) {
		t.Fatalf("got %d", len(got))
	}
	_, _ = backend.Write(up)
	_ = backend.CloseWrite()
	got, err = io.ReadAll(client)
	if len(got) != len(up) {
		t.Fatalf("client got %d %v", len(got), err)
	}
	r := <-done
	t.Logf("%+v", r)
}
