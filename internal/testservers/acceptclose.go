package testservers

import (
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// AcceptAndClose returns the address of a loopback listener that closes what
// it accepts, so that many connects in a row never fill its backlog. It
// accepts with raw system calls, which allocate nothing, so that benchmarks
// and allocation counts (which see every goroutine's) show the connects'
// alone. The listener is closed when t ends.
func AcceptAndClose(t testing.TB) string {
	t.Helper()
	// A listener's net.RawConn cannot wait for readability; an *os.File's can.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := os.NewFile(uintptr(fd), "listener")
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = l.Close()
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		_ = l.Close()
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = l.Close()
		t.Fatal(err)
	}
	rc, err := l.SyscallConn()
	if err != nil {
		_ = l.Close()
		t.Fatal(err)
	}
	acceptAll := func(fd uintptr) bool {
		for {
			conn, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, fd, 0, 0, unix.SOCK_CLOEXEC, 0, 0)
			switch errno {
			case 0:
				_ = unix.Close(int(conn))
			case unix.EINTR, unix.ECONNABORTED:
			default:
				return errno != unix.EAGAIN
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rc.Read(acceptAll) == nil { // until the listener is closed
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port)).String()
}
