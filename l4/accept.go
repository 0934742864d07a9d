package l4

import (
	"errors"
	"net"
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

func (s *service) startAcceptor(ln *net.TCPListener) *acceptor {
	a := &acceptor{ln: ln, stop: make(chan struct{}), done: make(chan struct{})}
	go s.acceptLoop(a)
	return a
}

// close stops accepting and waits for the loop to return. Connections already
// accepted go on.
func (a *acceptor) close() {
	close(a.stop)
	_ = a.ln.Close()
	<-a.done
}

// detach stops the accept loop but keeps the listener open, for a reload
// that hands the address over to another service, and returns it.
func (a *acceptor) detach() *net.TCPListener {
	close(a.stop)
	_ = a.ln.SetDeadline(time.Unix(1, 0)) // wakes a blocked Accept
	<-a.done
	_ = a.ln.SetDeadline(time.Time{})
	return a.ln
}

// acceptLoop accepts until the listener is closed. It never returns on any
// other error: it backs off, counts, logs at a bounded rate and tries again,
// so running out of file descriptors degrades service instead of ending it.
func (s *service) acceptLoop(a *acceptor) {
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
			s.acceptErrors.Add(1)
			delay = min(max(2*delay, acceptDelayMin), acceptDelayMax)
			if ok, n := s.acceptLog.allow(time.Now()); ok {
				s.r.log.Error().Err(err).Str("service", s.name).Dur("retry_in", delay).
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
		s.admit(conn)
	}
}

// admit applies the service's connection limit and hands the connection to
// its own goroutine.
func (s *service) admit(conn *net.TCPConn) {
	cfg := s.cfg.Load()
	s.total.Add(1)
	n := s.active.Add(1)
	if limit := int64(cfg.MaxConnections); limit > 0 && n > limit {
		s.active.Add(-1)
		s.rejected.maxConns.Add(1)
		start := time.Now()
		_ = conn.Close()
		if cfg.accessLog {
			s.logRejected(conn.RemoteAddr(), "rejected: max_connections", 0, start, nil)
		}
		return
	}
	s.r.connWG.Add(1)
	s.r.workers.run(func() { s.serve(conn, cfg) })
}
