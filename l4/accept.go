package l4

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/balancel4/balance-l4/l4/engine"
	"golang.org/x/sys/unix"
)

// Accept backoff, as net/http does it: a temporary error (EMFILE, ENFILE,
// ENOBUFS...) sleeps 5 ms, doubling to 1 s, and a good accept resets it.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// acceptor is one listener; the copy engine's loops accept on it.
type acceptor struct {
	f     *front
	ln    *net.TCPListener
	delay atomic.Int64 // the current accept backoff, ns; 0 after a good accept

	mu     sync.Mutex
	eln    *engine.Listener // nil until the engine took the listener
	retry  *time.Timer      // set while waiting to try again
	closed bool
}

// start begins accepting on ln; f.routes must be set. Clients are accepted
// on the engine's loops (engine.Listen) on a duplicate of ln's descriptor:
// non-blocking from birth, in no netpoller, and no goroutine is woken for
// a client until it needs one. Should the engine not take the listener (no
// descriptor for the duplicate, no memory for epoll), it is counted and
// logged as an accept error and tried again after the accept backoff.
func (f *front) start(ln *net.TCPListener) {
	a := &acceptor{f: f, ln: ln}
	f.acc = a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.listenLocked()
}

func (a *acceptor) listenLocked() {
	a.retry = nil
	if a.closed {
		return
	}
	eln, err := a.listen()
	if err != nil {
		delay := a.AcceptFailed(fmt.Errorf("listening on %s: %w", a.ln.Addr(), err))
		a.retry = time.AfterFunc(delay, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.listenLocked()
		})
		return
	}
	a.eln = eln
}

func (a *acceptor) listen() (*engine.Listener, error) {
	raw, err := a.ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	// Accepted sockets inherit TCP_NODELAY, which Go would set on each one
	// it accepted: the data path forwards small messages as they come.
	var optErr error
	if err := raw.Control(func(s uintptr) {
		optErr = unix.SetsockoptInt(int(s), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}); err != nil {
		return nil, err
	}
	if optErr != nil {
		return nil, os.NewSyscallError("setsockopt", optErr)
	}
	fd, err := dupSocket(a.ln)
	if err != nil {
		return nil, err
	}
	return a.f.r.eng.Listen(fd, a)
}

// close stops accepting (no client is handed over once it returns) and
// closes the listener. Connections already accepted go on.
func (a *acceptor) close() {
	a.mu.Lock()
	a.closed = true
	if a.retry != nil {
		a.retry.Stop()
	}
	eln := a.eln
	a.mu.Unlock()
	if eln != nil {
		eln.Close()
	}
	_ = a.ln.Close()
}

// Accepted takes a client, on an engine loop.
func (a *acceptor) Accepted(fd int, peer *unix.RawSockaddrAny) {
	if a.delay.Load() != 0 { // a store on every accept would bounce the line between loops
		a.delay.Store(0)
	}
	a.f.dispatch(fd, tcpAddrRaw(peer))
}

// AcceptFailed backs off, counts and logs at a bounded rate, so running out
// of file descriptors degrades service instead of ending it. Accept errors
// are counted under the address's first service.
func (a *acceptor) AcceptFailed(err error) time.Duration {
	delay := time.Duration(a.delay.Load())
	delay = min(max(2*delay, acceptDelayMin), acceptDelayMax)
	a.delay.Store(int64(delay))
	s := a.f.routes.Load().first
	s.acceptErrors.Add(1)
	if ok, n := s.acceptLog.allow(time.Now()); ok {
		s.r.log.Error().Err(err).Str("service", s.name).Dur("retry_in_ms", delay).
			Int64("suppressed", n).Msg("accepting connections failed; backing off")
	}
	return delay
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
func (s *service) admit(fd int, src *net.TCPAddr, cfg *serviceConfig) {
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
	s.serveInline(fd, src, cfg, adm)
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
