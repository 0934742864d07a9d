// Package rawconnect connects TCP sockets to IP addresses with raw system
// calls. Its two users connect often enough for Go's dialer to show in their
// profiles: the data path's connects to backends at an IP address (l4) and
// the plain tcp health check of an IP literal (health).
//
// Go's dialer parses the address on every dial, sets options neither user
// wants, registers the socket with the netpoller before connecting, parks
// the goroutine until the netpoller reports the socket writable and then asks
// the kernel for both addresses. Here an address is parsed and turned into a
// socket address once (Sockaddr), and a connect is socket, the caller's
// options (Options), a non-blocking connect and one look at the TCP state
// (Look). On loopback and fast networks the kernel has run the whole
// handshake inside connect, so the look answers and nothing waits; only a
// handshake still in flight waits for writability in Go's poller (Wait).
// Nothing on the way to a connected socket allocates.
//
// A connect is judged from the socket's TCP state and its pending error
// (Judge): the kernel puts the error of a failed connect (refused, reset,
// unreachable, timed out) in SO_ERROR, and a backend that accepted and closed
// at once has connected all the same (CLOSE_WAIT), as Go's dialer says.
//
// The package imports nothing of the project (internal/importgraph).
package rawconnect

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TCP states (include/net/tcp_states.h), the first byte of TCP_INFO.
const (
	StateEstablished = 1
	StateSynSent     = 2
	StateSynRecv     = 3
	StateClose       = 7
	StateCloseWait   = 8
)

// Sockaddr is an IPv4 or IPv6 address with a port as connect(2) takes it: a
// sockaddr_in or a sockaddr_in6. It holds no pointer, so a caller can keep
// it on its stack. The zero Sockaddr is no address: Start fails on it.
type Sockaddr struct {
	raw unix.RawSockaddrInet6 // a RawSockaddrInet4 in its first bytes for IPv4
}

// SockaddrFrom returns ap's socket address. An IPv4-mapped IPv6 address
// (::ffff:10.0.0.1) gets an IPv4 one, as net.Dialer gives it an IPv4
// socket: an IPv6 socket could not connect to it where IPv6 is disabled or
// net.ipv6.bindv6only makes every IPv6 socket IPv6-only.
func SockaddrFrom(ap netip.AddrPort) Sockaddr {
	var sa Sockaddr
	ip := ap.Addr().Unmap()
	switch {
	case ip.Is4():
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		in.Family = unix.AF_INET
		putPort(&in.Port, ap.Port())
		in.Addr = ip.As4()
	case ip.Is6():
		sa.raw.Family = unix.AF_INET6
		putPort(&sa.raw.Port, ap.Port())
		sa.raw.Addr = ip.As16()
	}
	return sa
}

// Family is the address family, AF_INET or AF_INET6 (0 for no address).
func (sa *Sockaddr) Family() int { return int(sa.raw.Family) }

// putPort stores port in network byte order, as sockaddr_in wants it.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// ParseAddrPort parses an IP literal with a port ("10.0.0.1:80",
// "[2001:db8::1]:80") as netip.ParseAddrPort does, and unmaps an IPv4-mapped
// address (see SockaddrFrom). ok is false for anything else: a host name, an
// address with an IPv6 zone (which needs an interface lookup), brackets wrong
// for the family; those are for Go's dialer. Port 0 parses.
//
// Not netip.ParseAddrPort itself: its 456-byte frame alone made every health
// check's new goroutine grow its stack.
func ParseAddrPort(addr string) (ap netip.AddrPort, ok bool) {
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
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), true
}

// Options are the socket options a caller wants set before the connect.
type Options struct {
	// NoDelay sets TCP_NODELAY: the data path forwards small messages as
	// they come.
	NoDelay bool
	// ResetOnClose sets SO_LINGER to 0: close sends a reset instead of a
	// FIN and leaves no TIME_WAIT socket behind, as HAProxy's checks do.
	ResetOnClose bool
}

// lingerReset is SO_LINGER 0. The kernel only reads it.
var lingerReset = unix.Linger{Onoff: 1, Linger: 0}

// Start opens a non-blocking socket for sa, sets o and starts a connect.
// connected says whether the handshake is over already; if not, the caller
// owns a connecting fd and waits with Wait. Either way fd is the caller's to
// close. On error there is no socket left: err is ctx's error when ctx is
// done (a done ctx fails even a connect that would complete at once, as with
// Go's dialer), else an *os.SyscallError; a failed connect's is "connect"
// with the errno, as Judge says.
func Start(ctx context.Context, sa *Sockaddr, o Options) (fd int, connected bool, err error) {
	if err := ctx.Err(); err != nil {
		return -1, false, err
	}
	fd, err = unix.Socket(sa.Family(), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	if err := setOptions(fd, o); err != nil {
		_ = unix.Close(fd)
		return -1, false, os.NewSyscallError("setsockopt", err)
	}
	if err := connect(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, false, os.NewSyscallError("connect", err)
	}
	done, err := Look(fd)
	if err != nil {
		_ = unix.Close(fd)
		return -1, false, err
	}
	return fd, done, nil
}

func setOptions(fd int, o Options) error {
	if o.NoDelay {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return err
		}
	}
	if o.ResetOnClose {
		return unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &lingerReset)
	}
	return nil
}

// connect starts a connect on the non-blocking fd. A raw system call: it
// cannot block, and on loopback, where the kernel runs the whole handshake
// inside it, it keeps the processor with the goroutine for those few
// microseconds instead of telling the scheduler it might block (see
// l4/engine's sys.go). Even there it answers EINPROGRESS: the SYN-ACK waits
// in the socket's backlog until connect releases the socket. EINPROGRESS,
// EINTR and EALREADY mean the connect goes on: Look says how it stands.
func connect(fd int, sa *Sockaddr) error {
	n := uintptr(unix.SizeofSockaddrInet6)
	if sa.raw.Family == unix.AF_INET {
		n = unix.SizeofSockaddrInet4
	}
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), n)
	switch e {
	case 0, unix.EINPROGRESS, unix.EINTR, unix.EALREADY:
		return nil
	}
	return e
}

// Look looks at a connecting socket: done is false while the handshake is
// in flight; else err is nil (connected) or says why the connect failed, as
// Judge does. It reads SO_ERROR only once the state is neither ESTABLISHED
// nor in flight: the read clears the error, and in SYN_SENT it would take a
// soft error (an ICMP report) while the kernel still retries.
func Look(fd int) (done bool, err error) {
	// The socket's TCP state: the first byte of TCP_INFO, which the
	// kernel copies as far as the buffer goes.
	b, err := unix.GetsockoptByte(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return true, os.NewSyscallError("getsockopt", err)
	}
	state := int(b)
	var soErr syscall.Errno
	if state != StateEstablished && !inFlight(state) {
		n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return true, os.NewSyscallError("getsockopt", err)
		}
		soErr = syscall.Errno(n)
	}
	return Judge(state, soErr)
}

func inFlight(state int) bool { return state == StateSynSent || state == StateSynRecv }

// Judge judges a connect from its TCP state and its pending socket error
// (SO_ERROR; 0 when there is none or it was not read). done is false while
// the handshake is in flight (SYN_SENT, or SYN_RECV in a simultaneous open);
// else err, an *os.SyscallError of "connect", is why it failed, or nil:
//
//   - a pending error fails the connect with that error: refused, reset,
//     unreachable, timed out, whatever the state;
//   - CLOSE without one fails it with ECONNABORTED (below);
//   - anything else connected, CLOSE_WAIT included: the backend accepted and
//     closed at once, which Go's dialer calls connected too, and the reader
//     gets its FIN.
//
// CLOSE without a pending error is ECONNABORTED, "software caused connection
// abort", not ECONNRESET. The kernel records why it closed a connecting
// socket in SO_ERROR before it moves the socket to CLOSE: ECONNREFUSED for a
// reset answering the SYN, ECONNRESET for a reset after the handshake, EPIPE
// for one after the backend's FIN, the ICMP error, ETIMEDOUT. Nothing there
// means the connection was torn down with no reason recorded (or the reason
// was already taken), so it is not evidence that the backend reset it. An
// operator who reads "connection reset by peer" in a health check's reason or
// a connect failure log goes to the backend for a reset it never sent;
// "connection aborted" says what is known, that the connect ended without
// connecting, and both count as a failed connect alike.
func Judge(state int, soErr syscall.Errno) (done bool, err error) {
	switch {
	case inFlight(state):
		return false, nil
	case soErr != 0:
		return true, os.NewSyscallError("connect", soErr)
	case state == StateClose:
		return true, os.NewSyscallError("connect", syscall.ECONNABORTED)
	}
	return true, nil
}

// Wait waits in Go's poller for the connect on f to end: f wraps a socket
// Start left connecting (os.NewFile, which registers the non-blocking socket
// with the poller). It gives up when timeout passes (0: no timeout of its
// own) or ctx is done, and returns nil once connected; Look's error when the
// connect failed; ctx's error when ctx ended the wait, by cancellation or by
// its deadline; an error wrapping os.ErrDeadlineExceeded when the timeout
// passed first. f is left without a write deadline when the connect succeeds
// (unless ctx is done meanwhile, which fails it: the deadline ctx's end sets
// may land after that).
func Wait(ctx context.Context, f *os.File, timeout time.Duration) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline, ctxDeadline = d, true
	}
	if !deadline.IsZero() {
		if err := f.SetWriteDeadline(deadline); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	var result error
	werr := raw.Write(func(fd uintptr) bool {
		done, err := Look(int(fd))
		result = err
		return done
	})
	if !stop() {
		return ctx.Err()
	}
	switch {
	case werr == nil && result != nil:
		return result
	case werr == nil:
		if deadline.IsZero() {
			return nil
		}
		return f.SetWriteDeadline(time.Time{})
	case errors.Is(werr, os.ErrDeadlineExceeded) && ctxDeadline:
		// The poller's deadline is ctx's and may pass a moment before
		// ctx's own timer fires.
		return context.DeadlineExceeded
	}
	return werr
}
