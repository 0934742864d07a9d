package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
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
// handshake completes inside connect, says so without a wait. The socket
// joins Go's netpoller through os.NewFile, which waits for the connect
// elsewhere and for everything after. The mechanics, and the judgement of a
// connect from the socket's TCP state, are internal/rawconnect's, which the
// plain tcp health check shares. A backend named by host name keeps Go's
// dialer, which resolves it on every dial.

// socket is one side of a proxied connection as the copy loops, the watch
// timer and abort use it: a *net.TCPConn (the client, a backend named by host
// name) or a *rawSocket (a backend at an IP address).
type socket interface {
	SyscallConn() (syscall.RawConn, error)
	SetReadDeadline(t time.Time) error
	CloseWrite() error
	SetLinger(sec int) error
	Write(b []byte) (int, error)
	Close() error
}

var (
	_ socket = (*net.TCPConn)(nil)
	_ socket = (*rawSocket)(nil)
)

// rawSocket is a TCP socket connected by dialIP.
type rawSocket struct {
	*os.File
	closed atomic.Bool // Close was called
}

// Close closes the socket; waits on it then end with net.ErrClosed.
func (s *rawSocket) Close() error {
	s.closed.Store(true)
	return s.File.Close()
}

// SyscallConn returns the socket's raw connection. An os.File's says "use of
// closed file" with an error of the poll package's that no exported
// sentinel matches; this one says net.ErrClosed once Close was called, as a
// *net.TCPConn's does, so the copy loops tell an abort from a failure alike
// for both kinds of socket.
func (s *rawSocket) SyscallConn() (syscall.RawConn, error) {
	raw, err := s.File.SyscallConn()
	if err != nil {
		return nil, err
	}
	return rawSocketConn{raw, s}, nil
}

type rawSocketConn struct {
	syscall.RawConn
	s *rawSocket
}

func (c rawSocketConn) closedErr(err error) error {
	if err != nil && c.s.closed.Load() {
		return net.ErrClosed
	}
	return err
}

func (c rawSocketConn) Control(f func(fd uintptr)) error {
	return c.closedErr(c.RawConn.Control(f))
}

func (c rawSocketConn) Read(f func(fd uintptr) bool) error {
	return c.closedErr(c.RawConn.Read(f))
}

func (c rawSocketConn) Write(f func(fd uintptr) bool) error {
	return c.closedErr(c.RawConn.Write(f))
}

// CloseWrite shuts down the writing half: the peer reads EOF.
func (s *rawSocket) CloseWrite() error {
	return s.control("shutdown", func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) })
}

// SetLinger sets SO_LINGER; 0 makes Close send RST.
func (s *rawSocket) SetLinger(sec int) error {
	l := unix.Linger{Onoff: 1, Linger: int32(sec)}
	if sec < 0 {
		l = unix.Linger{}
	}
	return s.control("setsockopt", func(fd int) error { return unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l) })
}

func (s *rawSocket) control(op string, f func(fd int) error) error {
	raw, err := s.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := raw.Control(func(fd uintptr) { opErr = f(int(fd)) }); err != nil {
		return err
	}
	return os.NewSyscallError(op, opErr)
}

// isClosed reports whether err says the socket was closed, by us: an abort
// got there first. An *os.File's own methods say it with os.ErrClosed.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}

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

// dialIP connects to sa within timeout, or until ctx is done. addr names the
// backend in errors.
func dialIP(ctx context.Context, sa *rawconnect.Sockaddr, timeout time.Duration, addr string) (socket, error) {
	// Start fails on a done ctx even where connect would complete at once,
	// as Go's dialer does: Shutdown counts on it for a connection it could
	// not abort yet.
	fd, connected, err := rawconnect.Start(ctx, sa, rawconnect.Options{NoDelay: true})
	if err != nil {
		return nil, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), addr) // non-blocking: joins the netpoller
	if !connected {
		// A zero timeout is none, as for Go's dialer (configuration
		// requires a connect timeout).
		if err := rawconnect.Wait(ctx, f, timeout); err != nil {
			_ = f.Close()
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				err = fmt.Errorf("connect: no answer within %v: %w", timeout, err)
			case err == ctx.Err():
				err = fmt.Errorf("connect: %w", err)
			}
			return nil, fmt.Errorf("dialing backend %s: %w", addr, err)
		}
	}
	return &rawSocket{File: f}, nil
}
