package engine

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ended records a connection's end.
type ended chan Result

func (e ended) Ended(r Result) { e <- r }

// pair returns two connected sockets: a's far end as a raw descriptor
// (what the engine takes) and the near end as a *net.TCPConn.
func socketPair(t *testing.T) (fd int, peer *net.TCPConn) {
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
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_ = backend.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(backend, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("backend read %q, %v", buf, err)
	}
	if _, err := backend.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "world" {
		t.Fatalf("client read %q, %v", buf, err)
	}
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
	_ = os.Stderr
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
