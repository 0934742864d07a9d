package engine

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// acceptLog records what a listener hands over.
type acceptLog struct {
	fds       chan int
	failed    atomic.Int32
	noAddress atomic.Int32 // clients handed over without their IPv4 address
}

func (a *acceptLog) Accepted(fd int, peer *unix.RawSockaddrAny) {
	if peer.Addr.Family != unix.AF_INET {
		a.noAddress.Add(1)
	}
	a.fds <- fd
}

func (a *acceptLog) AcceptFailed(error) time.Duration {
	a.failed.Add(1)
	return time.Millisecond
}

// listenFD opens a listening socket and returns its descriptor and address.
func listenFD(t *testing.T) (int, string) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return rawFD(t, f), ln.Addr().String()
}

// TestListenAcceptsUntilClosed: every client is handed over once, non-
// blocking; after Close returns nothing more is, and the socket is closed.
func TestListenAcceptsUntilClosed(t *testing.T) {
	e := newEngine(t)
	fd, addr := listenFD(t)
	a := &acceptLog{fds: make(chan int, 16)}
	ln, err := e.Listen(fd, a)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close()
		select {
		case got := <-a.fds:
			flags, err := unix.FcntlInt(uintptr(got), unix.F_GETFL, 0)
			if err != nil || flags&unix.O_NONBLOCK == 0 {
				t.Fatalf("client %d: flags %#x, %v; want non-blocking", i, flags, err)
			}
			_ = unix.Close(got)
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d was never handed over", i)
		}
	}
	ln.Close()
	ln.Close() // twice is fine
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("a client connected after Close")
	}
	select {
	case got := <-a.fds:
		t.Fatalf("descriptor %d handed over after Close", got)
	default:
	}
	if n := a.failed.Load(); n != 0 {
		t.Fatalf("%d accepts failed", n)
	}
	if n := a.noAddress.Load(); n != 0 {
		t.Fatalf("%d clients came without their address", n)
	}
}

// TestListenRefusesABadDescriptor: a descriptor epoll cannot take fails
// Listen on the first loop; the loops that never held it are left alone,
// and a good listener works afterwards.
func TestListenRefusesABadDescriptor(t *testing.T) {
	e := newEngine(t) // two loops
	f, err := os.CreateTemp(t.TempDir(), "not-a-socket")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &acceptLog{fds: make(chan int, 1)}
	if _, err := e.Listen(rawFD(t, f), a); !errors.Is(err, unix.EPERM) {
		t.Fatalf("Listen with a regular file = %v, want EPERM", err)
	}
	fd, addr := listenFD(t)
	ln, err := e.Listen(fd, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case got := <-a.fds:
		_ = unix.Close(got)
	case <-time.After(5 * time.Second):
		t.Fatal("the good listener's client was never handed over")
	}
}
