package l4

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Accept backoff, as net/http does it: a temporary error (EMFILE, ENFILE,
// ENOBUFS...) sleeps 5 ms, doubling to 1 s, and a good accept resets it.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// acceptor is one listener and its accept loop.
type acceptor struct {
	ln   *net.TCPListener
	file *os.File      // a duplicate of ln's descriptor that the loop waits on
	stop chan struct{} // closed to end a backoff sleep
	done chan struct{} // closed when the loop returned
}

// start begins accepting on ln; f.routes must be set.
func (f *front) start(ln *net.TCPListener) {
	// Accepted sockets inherit TCP_NODELAY from the listener, as Go sets it
	// on each one it accepts: the data path forwards small messages as they
	// come.
	if raw, err := ln.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) })
	}
	a := &acceptor{ln: ln, stop: make(chan struct{}), done: make(chan struct{})}
	f.acc = a
	go f.acceptLoop(a)
}

// listenerFile returns a duplicate of ln's descriptor as an *os.File, whose
// raw connection can wait for clients: a listener's own refuses to.
func listenerFile(ln *net.TCPListener) (*os.File, error) {
	raw, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, os.NewSyscallError("dup", dupErr)
	}
	return os.NewFile(uintptr(fd), "listener"), nil // non-blocking: in the netpoller
}

// close stops accepting and waits for the loop to return. Connections already
// accepted go on.
func (a *acceptor) close() {
	close(a.stop)
	_ = a.ln.Close()
	<-a.done
}

// acceptLoop accepts until the listener is closed. It never returns on any
// other error: it backs off, counts, logs at a bounded rate and tries again,
// so running out of file descriptors degrades service instead of ending it.
// Accept errors are counted under the address's first service.
//
// Clients are accepted with raw accept4, non-blocking from birth and never
// in Go's netpoller (the listener alone waits there): a plain client goes
// to the copy engine as it came, and TCP_NODELAY comes from the listener.
func (f *front) acceptLoop(a *acceptor) {
	defer close(a.done)
	file, err := listenerFile(a.ln)
	var raw syscall.RawConn
	if err == nil {
		raw, err = file.SyscallConn()
	}
	if err != nil {
		f.r.log.Error().Err(err).Str("address", a.ln.Addr().String()).Msg("accepting connections: cannot wait on the listener")
		return
	}
	// Closing the listener does not wake a wait on the duplicate: stop does.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-a.stop:
			_ = file.Close()
		case <-stopped:
			_ = file.Close()
		}
	}()
	var (
		fd    int
		sa    unix.RawSockaddrAny
		errno unix.Errno
	)
	accept := func(lfd uintptr) bool {
		for {
			size := uint32(unix.SizeofSockaddrAny)
			n, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)),
				unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
			switch e {
			case unix.EINTR, unix.ECONNABORTED:
				continue // a client that reset before we took it
			case unix.EAGAIN:
				return false
			}
			fd, errno = int(n), e
			return true
		}
	}
	var delay time.Duration
	for {
		err := raw.Read(accept)
		if err == nil && errno != 0 {
			err = os.NewSyscallError("accept4", errno)
		}
		if err != nil {
			select {
			case <-a.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			s := f.routes.Load().first
			s.acceptErrors.Add(1)
			delay = min(max(2*delay, acceptDelayMin), acceptDelayMax)
			if ok, n := s.acceptLog.allow(time.Now()); ok {
				s.r.log.Error().Err(err).Str("service", s.name).Dur("retry_in_ms", delay).
					Int64("suppressed", n).Msg("accepting connections failed; backing off")
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-a.stop:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		f.dispatch(fd, tcpAddrRaw(&sa))
	}
}

// tcpAddrRaw converts an accepted client's address.
func tcpAddrRaw(sa *unix.RawSockaddrAny) *net.TCPAddr {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := int(p.Port>>8 | p.Port<<8)
		return &net.TCPAddr{IP: net.IPv4(p.Addr[0], p.Addr[1], p.Addr[2], p.Addr[3]).To4(), Port: port}
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := int(p.Port>>8 | p.Port<<8)
		ip := make(net.IP, net.IPv6len)
		copy(ip, p.Addr[:])
		a := &net.TCPAddr{IP: ip, Port: port}
		if p.Scope_id != 0 {
			if ifc, err := net.InterfaceByIndex(int(p.Scope_id)); err == nil {
				a.Zone = ifc.Name
			}
		}
		return a
	}
	return nil
}

// tcpAddr converts a socket address from getsockname.
func tcpAddr(sa unix.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	}
	return nil
}

// admit takes a client of a plain address (one service, no SNI, no PROXY
// header to read): its allow/deny lists, then the service's connection
// limit, then the per-client limits (a client the service refuses takes no
// token), all before the client gets a goroutine; then serve takes it.
func (s *service) admit(fd int, src *net.TCPAddr) {
	cfg := s.cfg.Load()
	s.total.Add(1)
	n := s.active.Add(1)
	screen := cfg.screens()
	var ip netip.Addr
	if screen {
		ip = clientIP(src)
		if reason, err := s.screenAddr(cfg, ip); err != nil {
			s.active.Add(-1)
			s.closeRejectedFD(fd, cfg, src, reason, time.Now(), err)
			return
		}
	}
	if limit := int64(cfg.MaxConnections); limit > 0 && n > limit {
		s.active.Add(-1)
		s.rejected.maxConns.Add(1)
		s.closeRejectedFD(fd, cfg, src, "max_connections", time.Now(), nil)
		return
	}
	var adm admission
	if screen {
		tk, reason, err := s.screenLimits(cfg, ip)
		if err != nil {
			s.active.Add(-1)
			s.closeRejectedFD(fd, cfg, src, reason, time.Now(), err)
			return
		}
		adm.ticket, adm.screened = tk, true
	}
	s.r.connWG.Add(1)
	s.r.workers.run(func() { s.serve(fd, nil, src, cfg, adm) })
}

// closeRejectedFD is closeRejected for a raw client socket.
func (s *service) closeRejectedFD(fd int, cfg *serviceConfig, client *net.TCPAddr, reason string, start time.Time, err error) {
	closeFD(fd, false)
	if cfg.accessLog {
		s.logRejected(client, "rejected: "+reason, 0, start, err)
	}
}

// admitRouted takes a client that SNI routing picked s for, in the
// goroutine that routed it (which holds a count in r.connWG): the service's
// connection limit, then serve.
func (s *service) admitRouted(conn *net.TCPConn, adm admission) {
	cfg := s.cfg.Load()
	s.total.Add(1)
	n := s.active.Add(1)
	if limit := int64(cfg.MaxConnections); limit > 0 && n > limit {
		s.active.Add(-1)
		s.rejected.maxConns.Add(1)
		client := net.Addr(adm.src)
		if adm.src == nil {
			client = conn.RemoteAddr()
		}
		s.closeRejected(conn, cfg, client, "max_connections", adm.start, nil)
		s.r.connWG.Done()
		return
	}
	src, _ := conn.RemoteAddr().(*net.TCPAddr)
	s.serve(-1, conn, src, cfg, adm)
}

// rejectUnserved closes a client that no service took, before a service
// counted it: it is counted under s (total and the reason) and logged.
// The caller holds a count in r.connWG, which this gives back.
func (s *service) rejectUnserved(conn *net.TCPConn, client net.Addr, reason string, counter *atomic.Int64, start time.Time, err error) {
	s.total.Add(1)
	counter.Add(1)
	s.closeRejected(conn, s.cfg.Load(), client, reason, start, err)
	s.r.connWG.Done()
}

// closeRejected closes a client turned away before a backend was chosen,
// and writes its access log line with the reason.
func (s *service) closeRejected(conn *net.TCPConn, cfg *serviceConfig, client net.Addr, reason string, start time.Time, err error) {
	_ = conn.Close()
	if cfg.accessLog {
		s.logRejected(client, "rejected: "+reason, 0, start, err)
	}
}
