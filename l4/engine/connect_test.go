package engine

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/rawconnect"
	"github.com/balancel4/balance-l4/internal/testservers"
	"golang.org/x/sys/unix"
)

// connectResult is what a ConnectWaiter heard.
type connectResult struct {
	c   Connecting
	err error
}

type waiter chan connectResult

func (w waiter) Connected(c Connecting, err error) { w <- connectResult{c, err} }

// startConnect starts a connect to addr that the handshake leaves in flight.
func startConnect(t *testing.T, addr string) int {
	t.Helper()
	sa := rawconnect.SockaddrFrom(netip.MustParseAddrPort(addr))
	fd, connected, err := rawconnect.Start(t.Context(), &sa, rawconnect.Options{NoDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	if connected {
		_ = unix.Close(fd)
		t.Fatalf("the connect to %s completed at once; the test needs it in flight", addr)
	}
	return fd
}

func heard(t *testing.T, w waiter, within time.Duration) connectResult {
	t.Helper()
	select {
	case r := <-w:
		return r
	case <-time.After(within):
		t.Fatalf("the waiter heard nothing within %v", within)
		return connectResult{}
	}
}

// TestConnectWaitsForTheHandshake: a connect that completes a second later
// is waited for by a loop; Start with the wait's handle splices the socket
// without registering it again, and bytes flow both ways.
func TestConnectWaitsForTheHandshake(t *testing.T) {
	e := newEngine(t)
	addr, answer := testservers.AnswersLate(t)
	bfd := startConnect(t, addr)
	w := make(waiter, 1)
	e.Connect(bfd, time.Minute, w)
	waitFor(t, "the loop to hold the wait", func() bool { return e.Stats().Connecting == 1 })

	ln := answer()
	r := heard(t, w, 10*time.Second)
	if r.err != nil {
		t.Fatalf("the connect failed: %v", r.err)
	}
	if got := e.Stats().Connecting; got != 0 {
		t.Fatalf("%d waits left after the connect", got)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	backend := c.(*net.TCPConn)
	defer backend.Close()
	// The backend speaks first, before Start: the modified registration
	// reports what waits.
	if _, err := backend.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backend's bytes to wait on the socket before Start", func() bool {
		n, err := unix.IoctlGetInt(bfd, unix.SIOCINQ)
		return err == nil && n == 2
	}) // Start must then report them without a new edge
	cfd, client := socketPair(t)
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: bfd, Owner: done, Via: r.c}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("the client read %q, %v; want the backend's hi", buf, err)
	}
	pass(t, client, backend, "hello")
	_ = client.Close()
	_ = backend.Close()
	waitResult(t, done)
}

func TestConnectTimesOut(t *testing.T) {
	e := newEngine(t)
	bfd := startConnect(t, testservers.BlackHole(t))
	id := identity(t, bfd)
	w := make(waiter, 1)
	e.Connect(bfd, 50*time.Millisecond, w)
	if r := heard(t, w, 5*time.Second); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("waiting for a black hole: %v, want os.ErrDeadlineExceeded", r.err)
	}
	if !closed(bfd, id) {
		t.Fatal("the socket of a connect that timed out is still open")
	}
}

func TestConnectCancel(t *testing.T) {
	e := newEngine(t)
	bfd := startConnect(t, testservers.BlackHole(t))
	w := make(waiter, 1)
	c := e.Connect(bfd, time.Minute, w)
	waitFor(t, "the loop to hold the wait", func() bool { return e.Stats().Connecting == 1 })
	c.Cancel()
	if r := heard(t, w, 5*time.Second); !errors.Is(r.err, ErrCanceled) {
		t.Fatalf("a canceled wait: %v, want ErrCanceled", r.err)
	}
	c.Cancel() // over already: nothing happens
	if got := e.Stats().Connecting; got != 0 {
		t.Fatalf("%d waits left", got)
	}
}

func TestCloseCancelsConnectWaits(t *testing.T) {
	e, err := New(Options{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	bfd := startConnect(t, testservers.BlackHole(t))
	id := identity(t, bfd)
	w := make(waiter, 1)
	e.Connect(bfd, time.Minute, w)
	e.Close()
	if r := heard(t, w, time.Second); !errors.Is(r.err, ErrCanceled) {
		t.Fatalf("a wait at Close: %v, want ErrCanceled", r.err)
	}
	if !closed(bfd, id) {
		t.Fatal("the socket of a wait ended by Close is still open")
	}
}

// identity is what names an open descriptor's file, to tell it from
// another that takes its number later.
func identity(t *testing.T, fd int) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// closed says whether fd, which was the file id, is closed: no descriptor
// by that number, or another file's.
func closed(fd int, id unix.Stat_t) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err == unix.EBADF
	}
	return st.Dev != id.Dev || st.Ino != id.Ino
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
