package health

import (
	"context"
	"net"
	"net/netip"
	"os"

	"github.com/balancel4/balance-l4/internal/rawconnect"
	"golang.org/x/sys/unix"
)

// A plain tcp check (no send, no expect) of an IP literal asks one question:
// does the backend complete a handshake? Go's net.Dialer answers it with
// about ten system calls and a goroutine park per check (socket options,
// poller registration, getsockname, getpeername, a *TCPConn); at 10 000
// checks a second that was a third of the check's cost. connectCheck asks
// the kernel directly, through internal/rawconnect, which l4's connects to
// backends share: socket, SO_LINGER 0, a non-blocking connect, one look at
// the TCP state, close. On loopback and fast networks the handshake is over
// by the time connect returns (the kernel runs both ends in the caller), so
// the look answers; only a handshake still in flight waits, for
// writability, in Go's poller. The reset on close (SO_LINGER 0) sends no FIN
// and leaves no TIME_WAIT socket behind, as HAProxy's checks do.

// connectTarget is the address a plain tcp check connects to when it can
// skip net.Dialer: an IP literal without zone, with the port override
// applied; an IPv4-mapped address is IPv4 (rawconnect.ParseAddrPort). ok is
// false for anything else (a host name), which goes through the Dialer.
func (d dialer) connectTarget(addr string) (ap netip.AddrPort, ok bool) {
	ap, ok = rawconnect.ParseAddrPort(addr)
	if ok && d.port != 0 {
		ap = netip.AddrPortFrom(ap.Addr(), uint16(d.port))
	}
	return ap, ok
}

// connectCheck completes a TCP handshake with ap and resets the connection.
// Its errors read like net.Dialer's ("dial tcp ADDR: connect: connection
// refused") and wrap the errno, or ctx's error when it gave up waiting.
func connectCheck(ctx context.Context, ap netip.AddrPort) error {
	sa := rawconnect.SockaddrFrom(ap) // on the stack
	fd, connected, err := rawconnect.Start(ctx, &sa, rawconnect.Options{ResetOnClose: true})
	switch {
	case err != nil:
		return dialError(ap, err)
	case !connected:
		return waitConnected(ctx, fd, ap) // it owns fd now
	}
	_ = unix.Close(fd)
	return nil
}

// waitConnected waits in Go's poller for the handshake on fd to end, until
// ctx is done, and closes fd.
func waitConnected(ctx context.Context, fd int, ap netip.AddrPort) error {
	f := os.NewFile(uintptr(fd), "health check "+ap.String())
	defer f.Close()
	if err := rawconnect.Wait(ctx, f, 0); err != nil {
		return dialError(ap, err)
	}
	return nil
}

// dialError says which address a check failed to connect to, as net.Dialer
// does.
func dialError(ap netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
}
