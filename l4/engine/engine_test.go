package engine

import (
	"bytes"
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
	defer f.Close()
	return rawFD(t, f), peer
}

// rawFD returns a non-blocking duplicate of f's descriptor, the caller's to
// close (or to hand to the engine).
func rawFD(t testing.TB, f *os.File) int {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		t.Fatal(err)
	}
	return fd
}

// spliced is a connection started on an engine, with the peers of its two
// sockets.
type spliced struct {
	c               Conn
	client, backend *net.TCPConn
	done            ended
}

// startPair starts p between two new socket pairs: it fills in p's Client,
// Backend and Owner.
func startPair(t testing.TB, e *Engine, p Pair) spliced {
	t.Helper()
	var s spliced
	p.Client, s.client = socketPair(t)
	p.Backend, s.backend = socketPair(t)
	s.done = make(ended, 2) // room for a wrong second end, which a test then sees
	p.Owner = s.done
	c, err := e.Start(p)
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	return s
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
	var in, out atomic.Int64
	s := startPair(t, e, Pair{In: &in, Out: &out})
	client, backend := s.client, s.backend
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
	if r := waitResult(t, s.done); r.Reason != ClientFIN || r.In != 5 || r.Out != 5 || in.Load() != 5 || out.Load() != 5 {
		t.Fatalf("result %+v, live totals %d/%d; want client_fin with 5 bytes each way", r, in.Load(), out.Load())
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
	s := startPair(t, e, Pair{})
	client, backend := s.client, s.backend
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
	if err != nil || !bytes.Equal(got, up) {
		t.Fatalf("the backend got %d bytes (%v), not the %d sent", len(got), err, len(up))
	}
	_, _ = backend.Write(up)
	_ = backend.CloseWrite()
	got, err = io.ReadAll(client)
	if err != nil || !bytes.Equal(got, up) {
		t.Fatalf("the client got %d bytes (%v), not the %d sent", len(got), err, len(up))
	}
	if r := waitResult(t, s.done); r.Reason != ClientFIN || r.In != int64(len(up)) || r.Out != int64(len(up)) {
		t.Fatalf("result %+v, want client_fin with %d bytes each way", r, len(up))
	}
}

// TestBulkWithoutPipes: when no pipe can be opened (out of descriptors), a
// flow that turned to bulk reads through the buffer instead of stalling.
func TestBulkWithoutPipes(t *testing.T) {
	e := newEngine(t)
	s := startPair(t, e, Pair{})
	var limit unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	// A new descriptor takes the lowest free number, which must be under
	// the limit: with the limit at that number, none can be opened.
	free := 0
	for ; ; free++ {
		if _, err := unix.FcntlInt(uintptr(free), unix.F_GETFD, 0); err == unix.EBADF {
			break
		}
	}
	full := limit
	full.Cur = uint64(free)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &full); err != nil {
		t.Fatal(err)
	}
	restore := func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &limit) }
	defer restore()

	up := make([]byte, 256<<10)
	for i := range up {
		up[i] = byte(i * 13)
	}
	_ = s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = s.backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := s.client.Write(up)
		wrote <- err
	}()
	got := make([]byte, len(up))
	_, err := io.ReadFull(s.backend, got)
	restore()
	if err != nil || !bytes.Equal(got, up) {
		t.Fatalf("the backend got %v with no pipe to be had; want all %d bytes", err, len(up))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.OpenPipes != 0 {
		t.Fatalf("%d pipes open under a full descriptor table", st.OpenPipes)
	}
}
