package l4

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
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
	stop chan struct{} // closed to end a backoff sleep
	done chan struct{} // closed when the loop returned
}

// start begins accepting on ln; f.routes must be set.
func (f *front) start(ln *net.TCPListener) {
	a := &acceptor{ln: ln, stop: make(chan struct{}), done: make(chan struct{})}
	f.acc = a
	go f.acceptLoop(a)
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
func (f *front) acceptLoop(a *acceptor) {
	defer close(a.done)
	var delay time.Duration
	for {
		conn, err := a.ln.AcceptTCP()
		if err != nil {
			select {
			case <-a.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
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
		f.dispatch(conn)
	}
}

// admit takes a client of a plain address (one service, no SNI): unless
// the client's address comes in a PROXY header, its allow/deny lists, then
// the service's connection limit, then the per-client limits (a client the
// service refuses takes no token), all before the client gets a goroutine;
// then serve takes it.
func (s *service) admit(conn *net.TCPConn) {
	cfg := s.cfg.Load()
	s.total.Add(1)
	n := s.active.Add(1)
	src, _ := conn.RemoteAddr().(*net.TCPAddr)
	screen := !cfg.AcceptProxy && cfg.screens()
	var ip netip.Addr
	if screen {
		ip = clientIP(src)
		if reason, err := s.screenAddr(cfg, ip); err != nil {
			s.active.Add(-1)
			s.closeRejected(conn, cfg, src, reason, time.Now(), err)
			return
		}
	}
	if limit := int64(cfg.MaxConnections); limit > 0 && n > limit {
		s.active.Add(-1)
		s.rejected.maxConns.Add(1)
		s.closeRejected(conn, cfg, src, "max_connections", time.Now(), nil)
		return
	}
	var adm admission
	if screen {
		tk, reason, err := s.screenLimits(cfg, ip)
		if err != nil {
			s.active.Add(-1)
			s.closeRejected(conn, cfg, src, reason, time.Now(), err)
			return
		}
		adm.ticket, adm.screened = tk, true
	}
	s.r.connWG.Add(1)
	s.r.workers.run(func() { s.serve(conn, cfg, adm) })
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
	s.serve(conn, cfg, adm)
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
