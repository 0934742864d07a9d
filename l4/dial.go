package l4

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/balancel4/balance-l4/internal/rawconnect"
	"golang.org/x/sys/unix"
)

// Backends at an IP address are connected with raw system calls.
//
// Go's dialer parses the address string on every dial, asks the kernel for
// both addresses after connecting and always parks the goroutine until the
// netpoller reports the socket writable. A backend's address is fixed, so
// its socket address is built once; a dial is socket, setsockopt
// (TCP_NODELAY), connect and one getsockopt, which on loopback, where the
// handshake completes inside connect, says so without a wait: that socket
// goes to the copy engine as it is, never in Go's netpoller. A connect that
// must wait for the handshake started on a loop is waited for by the engine
// (engine.Connect); one started on a goroutine (after a backoff) waits in
// the netpoller through an *os.File, and the socket is then detached from it
// (a dup, and the original closed).
// The mechanics, and the judgement of a connect from the socket's TCP state,
// are internal/rawconnect's, which the plain tcp health check shares. A
// backend named by host name keeps Go's dialer, which resolves it on every
// dial, and is detached the same way.

// newSockaddr returns addr's socket address, built once per backend, or nil
// when addr is not an IP literal with a port (a host name; an IPv6 zone,
// which needs an interface lookup): those are dialled by Go's dialer.
func newSockaddr(addr string) *rawconnect.Sockaddr {
	ap, ok := rawconnect.ParseAddrPort(addr)
	if !ok || ap.Port() == 0 {
		return nil
	}
	sa := rawconnect.SockaddrFrom(ap)
	return &sa
}

// dialIP connects to sa within timeout, or until ctx is done, and returns
// the socket's descriptor: non-blocking and in no epoll instance. addr names
// the backend in errors.
func dialIP(ctx context.Context, sa *rawconnect.Sockaddr, timeout time.Duration, addr string) (int, error) {
	fd, connected, err := dialIPStart(ctx, sa, addr)
	if err != nil || connected {
		return fd, err
	}
	return dialIPWait(ctx, fd, timeout, addr)
}

// dialIPStart starts a connect; connected says whether it is over already.
func dialIPStart(ctx context.Context, sa *rawconnect.Sockaddr, addr string) (fd int, connected bool, err error) {
	// Start fails on a done ctx even where connect would complete at once,
	// as Go's dialer does: Shutdown counts on it for a connection it could
	// not abort yet.
	fd, connected, err = rawconnect.Start(ctx, sa, rawconnect.Options{NoDelay: true})
	if err != nil {
		return -1, false, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	return fd, connected, nil
}

// dialIPWait waits for the connect dialIPStart left in flight on fd.
func dialIPWait(ctx context.Context, fd int, timeout time.Duration, addr string) (int, error) {
	f := os.NewFile(uintptr(fd), addr) // non-blocking: joins the netpoller to wait
	// A zero timeout is none, as for Go's dialer (configuration requires a
	// connect timeout).
	if err := rawconnect.Wait(ctx, f, timeout); err != nil {
		_ = f.Close()
		return -1, waitError(err, timeout, addr)
	}
	fd, err := detach(f)
	if err != nil {
		return -1, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	return fd, nil
}

// waitError says why a wait for a connect ended without one: a connect's
// error as rawconnect.Judge says, os.ErrDeadlineExceeded after timeout, or
// a context's (or the engine's ErrCanceled, which is context.Canceled).
func waitError(err error, timeout time.Duration, addr string) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("connect: no answer within %v: %w", timeout, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("connect: %w", err)
	}
	return fmt.Errorf("dialing backend %s: %w", addr, err)
}

// detach takes a socket out of Go's netpoller for the copy engine: it
// returns a duplicate of its descriptor (non-blocking, like the original)
// and closes the original, which removes it from the netpoller.
func detach(c interface {
	syscall.Conn
	Close() error
}) (int, error) {
	fd, err := dupSocket(c)
	_ = c.Close()
	return fd, err
}

// dupSocket returns a close-on-exec duplicate of c's descriptor, which
// shares its open file (and so its non-blocking mode).
func dupSocket(c syscall.Conn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("dup", dupErr)
	}
	return fd, nil
}

// closeFD closes a raw socket, with a reset when reset is set.
func closeFD(fd int, reset bool) {
	if reset {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	}
	_ = unix.Close(fd)
}
