package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Backends at an IP address are connected with raw system calls.
//
// Go's dialer parses the address string on every dial, asks the kernel for
// both addresses after connecting and always parks the goroutine until the
// netpoller reports the socket writable. A backend's address is fixed, so
// its socket address is built once; a dial is socket, setsockopt
// (TCP_NODELAY), connect and, on loopback where the handshake completes
// inside connect, one getsockopt that says so without a wait. The socket
// joins Go's netpoller through os.NewFile, which waits for the connect
// elsewhere and for everything after. A backend named by host name keeps
// Go's dialer, which resolves it on every dial.

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

// sockaddr is a backend's address as connect(2) takes it, built once.
type sockaddr struct {
	family int
	len    uint32
	raw    unix.RawSockaddrAny
}

// newSockaddr returns addr's socket address, or nil when addr is not an IP
// literal with a port (a host name; an IPv6 zone, which needs an interface
// lookup): those are dialled by Go's dialer.
func newSockaddr(addr string) *sockaddr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return nil
	}
	sa := &sockaddr{}
	ip := ap.Addr().Unmap()
	port := ap.Port()
	if ip.Is4() {
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		in.Family = unix.AF_INET
		putPort(&in.Port, port)
		in.Addr = ip.As4()
		sa.family, sa.len = unix.AF_INET, unix.SizeofSockaddrInet4
		return sa
	}
	in6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
	in6.Family = unix.AF_INET6
	putPort(&in6.Port, port)
	in6.Addr = ip.As16()
	sa.family, sa.len = unix.AF_INET6, unix.SizeofSockaddrInet6
	return sa
}

// putPort stores port in network byte order, as sockaddr_in wants it.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// TCP states from include/net/tcp_states.h (tcpStateClose is in splice.go).
const (
	tcpStateEstablished = 1
	tcpStateSynSent     = 2
	tcpStateCloseWait   = 8
)

// dialIP connects to sa within timeout, or until ctx is done. addr names the
// backend in errors.
func dialIP(ctx context.Context, sa *sockaddr, timeout time.Duration, addr string) (socket, error) {
	// A done ctx fails the dial even where connect would complete at once,
	// as with Go's dialer: Shutdown counts on it for a connection it could
	// not abort yet.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	fd, err := unix.Socket(sa.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dialing backend %s: %w", addr, os.NewSyscallError("socket", err))
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("dialing backend %s: %w", addr, os.NewSyscallError("setsockopt", err))
	}
	// connect on a non-blocking socket does not block: on loopback the whole
	// handshake runs inside it.
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
	if e != 0 && e != unix.EINPROGRESS && e != unix.EINTR {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("dialing backend %s: %w", addr, os.NewSyscallError("connect", e))
	}
	f := os.NewFile(uintptr(fd), addr) // non-blocking: joins the netpoller
	s := &rawSocket{File: f}
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	var connErr error
	connected := func(fd uintptr) bool {
		state, err := tcpState(int(fd))
		switch {
		case err != nil:
			connErr = os.NewSyscallError("getsockopt", err)
		case state == tcpStateEstablished:
			connErr = nil
		case state == tcpStateSynSent:
			return false
		default: // refused, reset, or connected and closed by the backend already
			soErr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if err != nil {
				connErr = os.NewSyscallError("getsockopt", err)
			} else {
				connErr = connectOutcome(state, syscall.Errno(soErr))
			}
		}
		return true
	}
	pending := false
	if err := raw.Control(func(fd uintptr) { pending = !connected(fd) }); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	if pending {
		if err := waitConnected(ctx, f, raw, connected, timeout); err != nil {
			connErr = err
		}
	}
	if connErr != nil {
		_ = f.Close()
		return nil, fmt.Errorf("dialing backend %s: %w", addr, connErr)
	}
	return s, nil
}

// connectOutcome judges a connect that is no longer in SYN_SENT nor
// ESTABLISHED from its TCP state and pending socket error: an error fails it;
// a backend that accepted and closed at once (CLOSE_WAIT) connected all the
// same, as with Go's dialer, and the copy loops will read its FIN.
func connectOutcome(state int, soErr syscall.Errno) error {
	switch {
	case soErr != 0:
		return os.NewSyscallError("connect", soErr)
	case state == tcpStateClose:
		return os.NewSyscallError("connect", unix.ECONNABORTED)
	}
	return nil
}

// waitConnected waits until connected says the connect ended (and how, in
// its own variable), the timeout passed or ctx is done.
func waitConnected(ctx context.Context, f *os.File, raw syscall.RawConn, connected func(uintptr) bool, timeout time.Duration) error {
	var deadline time.Time // none: configuration requires a connect timeout, Go's dialer takes 0 as none
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if err := f.SetWriteDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	err := raw.Write(connected)
	if !stop() {
		// ctx is done, and its deadline may land after ours is cleared.
		return fmt.Errorf("connect: %w", ctx.Err())
	}
	switch {
	case err == nil:
		return f.SetWriteDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("connect: no answer within %v: %w", timeout, err)
	}
	return err
}

// tcpState reads the socket's TCP state: the first byte of TCP_INFO, which
// the kernel copies as far as the buffer goes.
func tcpState(fd int) (int, error) {
	state, err := unix.GetsockoptByte(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return int(state), err
}
