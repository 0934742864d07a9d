package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A plain tcp check (no send, no expect) of an IP literal asks one question:
// does the backend complete a handshake? Go's net.Dialer answers it with
// about ten system calls and a goroutine park per check (socket options,
// poller registration, getsockname, getpeername, a *TCPConn); at 10 000
// checks a second that was a third of the check's cost. connectCheck asks
// the kernel directly: socket, SO_LINGER 0, a non-blocking connect, one look
// at the TCP state, close. On loopback and fast networks the handshake is
// over by the time connect returns (the kernel runs both ends in the
// caller), so the look answers; only a handshake still in flight waits, for
// writability, in Go's poller. The reset on close (SO_LINGER 0) sends no FIN
// and leaves no TIME_WAIT socket behind, as HAProxy's checks do.

// TCP states (include/net/tcp_states.h), the first byte of TCP_INFO.
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpClose       = 7
	tcpCloseWait   = 8
)

// lingerReset makes close send a reset. The kernel only reads it.
var lingerReset = unix.Linger{Onoff: 1, Linger: 0}

// connectTarget is the address a plain tcp check connects to when it can
// skip net.Dialer: an IP literal without zone, with the port override
// applied. ok is false for anything else (a host name), which goes through
// the Dialer.
func (d dialer) connectTarget(addr string) (ap netip.AddrPort, ok bool) {
	// Not netip.ParseAddrPort: its 456-byte frame alone made every check's
	// new goroutine grow its stack.
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	host, port := addr[:i], addr[i+1:]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" || ip.Is4() != (host == addr[:i]) {
		return netip.AddrPort{}, false // a name, a zone, or brackets wrong for the family
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	if d.port != 0 {
		n = uint64(d.port)
	}
	// An IPv4-mapped address gets an IPv4 socket, as net.Dialer does.
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), true
}

// connectCheck completes a TCP handshake with ap and resets the connection.
// Its errors read like net.Dialer's ("dial tcp ADDR: connect: connection
// refused") and wrap the errno, or ctx's error when it gave up waiting.
func connectCheck(ctx context.Context, ap netip.AddrPort) error {
	if err := ctx.Err(); err != nil {
		return dialError(ap, err)
	}
	family := unix.AF_INET
	if !ap.Addr().Is4() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return dialError(ap, os.NewSyscallError("socket", err))
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &lingerReset); err != nil {
		_ = unix.Close(fd)
		return dialError(ap, os.NewSyscallError("setsockopt", err))
	}
	switch err := connect(fd, ap); err {
	case nil, unix.EINPROGRESS, unix.EINTR, unix.EALREADY:
	default:
		_ = unix.Close(fd)
		return dialError(ap, os.NewSyscallError("connect", err))
	}
	done, err := connected(fd)
	if !done {
		return waitConnected(ctx, fd, ap) // it owns fd now
	}
	_ = unix.Close(fd)
	if err != nil {
		return dialError(ap, err)
	}
	return nil
}

// connect starts a connect to ap with the socket address on the stack (the
// unix.Sockaddr types escape to the heap).
func connect(fd int, ap netip.AddrPort) error {
	var (
		ptr unsafe.Pointer
		n   uintptr
		sa4 unix.RawSockaddrInet4
		sa6 unix.RawSockaddrInet6
	)
	port := ap.Port()
	if ap.Addr().Is4() {
		sa4.Family = unix.AF_INET
		sa4.Addr = ap.Addr().As4()
		putPort(&sa4.Port, port)
		ptr, n = unsafe.Pointer(&sa4), unsafe.Sizeof(sa4)
	} else {
		sa6.Family = unix.AF_INET6
		sa6.Addr = ap.Addr().As16()
		putPort(&sa6.Port, port)
		ptr, n = unsafe.Pointer(&sa6), unsafe.Sizeof(sa6)
	}
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), n)
	if errno != 0 {
		return errno
	}
	return nil
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// connected looks at a connecting socket: done is false while the handshake
// is in flight; else err says why it failed, or is nil. A peer that accepted
// and already closed (CLOSE_WAIT) completed the handshake: that passes.
func connected(fd int) (done bool, err error) {
	state, err := unix.GetsockoptByte(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return true, os.NewSyscallError("getsockopt", err)
	}
	switch state {
	case tcpEstablished, tcpCloseWait:
		return true, nil
	case tcpClose:
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			return true, os.NewSyscallError("getsockopt", err)
		case soErr != 0:
			return true, os.NewSyscallError("connect", unix.Errno(soErr))
		}
		return true, os.NewSyscallError("connect", unix.ECONNRESET)
	}
	return false, nil
}

// waitConnected waits in Go's poller for the handshake on fd to end, until
// ctx is done, and closes fd.
func waitConnected(ctx context.Context, fd int, ap netip.AddrPort) error {
	f := os.NewFile(uintptr(fd), "health check "+ap.String())
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return dialError(ap, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var result error
	werr := rc.Write(func(fd uintptr) bool {
		done, err := connected(int(fd))
		result = err
		return done
	})
	switch {
	case werr == nil:
		if result != nil {
			return dialError(ap, result)
		}
		return nil
	case ctx.Err() != nil:
		return dialError(ap, ctx.Err())
	case errors.Is(werr, os.ErrDeadlineExceeded):
		// The write deadline is ctx's and may pass a moment before ctx's
		// own timer fires.
		return dialError(ap, context.DeadlineExceeded)
	}
	return dialError(ap, werr)
}

// dialError says which address a check failed to connect to, as net.Dialer
// does.
func dialError(ap netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
}
