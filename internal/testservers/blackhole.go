package testservers

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BlackHole returns a loopback address whose connects hang, for connect
// timeouts: a listener with a backlog of 0 whose accept queue it fills, so
// the kernel drops further SYNs. Everything is closed when t ends.
func BlackHole(t testing.TB) string {
	t.Helper()
	addr, _ := fullListener(t)
	return addr
}

// AnswersLate returns a loopback address whose connects hang, as a
// BlackHole's, until answer is called: it empties the accept queue and
// returns the listener. A connect in flight then completes when its SYN is
// sent again, about a second after the first: a handshake that takes a
// round trip and more, as with a backend on another host.
func AnswersLate(t testing.TB) (addr string, answer func() net.Listener) {
	t.Helper()
	addr, fd := fullListener(t)
	return addr, func() net.Listener {
		t.Helper()
		// Empty the queue: the fillers, and a filler's connect taken for
		// hung that was only slow. A connect under test is not there: its
		// SYN found the queue full, and comes again a second later.
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		for {
			nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
			switch err {
			case nil:
				_ = unix.Close(nfd)
				continue
			case unix.EINTR, unix.ECONNABORTED:
				continue
			case unix.EAGAIN:
			default:
				t.Fatalf("emptying the accept queue: %v", err)
			}
			break
		}
		// The listener gets a duplicate; fd stays t's to close.
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(dup), "late listener")
		ln, err := net.FileListener(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		return ln
	}
}

// fullListener is a listening socket with a backlog of 0 whose accept queue
// is full of connections of its own, which close when t ends.
func fullListener(t testing.TB) (addr string, fd int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for i := 0; ; i++ {
		if i == 16 {
			t.Fatal("could not fill the backlog")
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr, fd // the queue is full: this connect hung
		}
		t.Cleanup(func() { _ = c.Close() })
	}
}
