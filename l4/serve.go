package l4

import (
	"errors"
	"net"
	"time"

	"github.com/balancel4/balance-l4/l4/engine"
	"golang.org/x/sys/unix"
)

// Rejections a client connection may end with.
var (
	errNoBackend     = errors.New("l4: no eligible backend")
	errProxyHeader   = errors.New("l4: bad or missing PROXY header")
	errConnectFailed = errors.New("l4: every connect attempt failed")
)

// admission is what a client connection brings to serve from before it.
type admission struct {
	proxied  bool         // the PROXY header was read already (SNI routing reads it first)
	src, dst *net.TCPAddr // what it said, nil for LOCAL/UNKNOWN or when none was read
	first    []byte       // bytes read off the client to route it (its ClientHello), for the backend first
	screened bool         // allow/deny and per-client limits were applied at accept
	ticket   clientTicket // the client's per-client hold, released at the end
	start    time.Time    // when routing began; zero: now
}

// serve handles one client connection from accept until a backend is
// connected; then the copy engine has it, and its end comes back through
// Ended. The client is the raw socket cfd (with its address src) or, when it
// was read before (a PROXY header, a ClientHello), the *net.TCPConn client.
func (s *service) serve(cfd int, client *net.TCPConn, src *net.TCPAddr, cfg *serviceConfig, adm admission) {
	start := adm.start
	if start.IsZero() {
		start = time.Now()
	}
	c := &proxyConn{
		cfd: cfd, client: client, src: src,
		svc: s, start: start, accessLog: cfg.accessLog, ticket: adm.ticket,
	}
	s.track(c)

	var dst *net.TCPAddr // what the PROXY header we send says the client reached
	switch {
	case adm.proxied:
		if adm.src != nil && adm.dst != nil {
			c.src, dst = adm.src, adm.dst
		}
	case cfg.AcceptProxy:
		psrc, pdst, err := readProxyHeader(client, cfg.Timeouts.Connect)
		if err != nil {
			s.rejected.proxyHeader.Add(1)
			c.closeUnserved()
			if cfg.accessLog {
				s.logRejected(c.src, "rejected: proxy_header", 0, c.start, err)
			}
			s.retire(c)
			return
		}
		if psrc != nil && pdst != nil {
			c.src, dst = psrc, pdst
		}
	}
	if !adm.screened && cfg.screens() {
		tk, reason, err := s.screen(cfg, clientIP(c.src))
		if err != nil {
			c.closeUnserved()
			if cfg.accessLog {
				s.logRejected(c.src, "rejected: "+reason, 0, c.start, err)
			}
			s.retire(c)
			return
		}
		c.ticket = tk
	}

	cfg.retry.Budget.Deposit()
	s.connectAndSplice(c, cfg, adm, dst, false)
}

// serveInline is serve on an engine loop, for a client of a plain address
// that admit screened already: everything up to the splice runs there, a
// handshake in flight included (the engine waits for it); a backoff or a
// host name hands the rest to a kept goroutine.
func (s *service) serveInline(cfd int, src *net.TCPAddr, cfg *serviceConfig, adm admission) {
	c := &proxyConn{
		cfd: cfd, src: src,
		svc: s, start: time.Now(), accessLog: cfg.accessLog, ticket: adm.ticket,
	}
	s.track(c)
	cfg.retry.Budget.Deposit()
	s.connectAndSplice(c, cfg, adm, nil, true)
}

// connectAndSplice connects a backend for c and hands the pair to the copy
// engine, or closes c when no backend connects. Inline (on an engine loop)
// it stops where a connect must wait and carries on in a kept goroutine.
func (s *service) connectAndSplice(c *proxyConn, cfg *serviceConfig, adm admission, dst *net.TCPAddr, inline bool) {
	be, bfd, attempts, err := s.connect(s.r.ctx, cfg, clientKey(c.src), &c.k, inline)
	if inline && err == errMustWait {
		if c.k.b != nil {
			// A handshake in flight: a loop waits for it and Connected
			// carries on there, with an empty admission and no dst, as
			// inline (serveInline) always has.
			if c.k.wait == nil {
				c.k.wait = &handshakeWait{}
			}
			w := c.k.wait
			w.cfg = cfg
			c.mu.Lock()
			w.via = s.r.eng.Connect(c.k.fd, cfg.dialer.Timeout, c)
			c.waiting = true
			if c.closed { // aborted meanwhile: the wait ends now
				w.via.Cancel()
			}
			c.mu.Unlock()
			return
		}
		s.r.workers.run(func() { s.connectAndSplice(c, cfg, adm, dst, false) })
		return
	}
	if err != nil {
		reason := "connect_failed"
		if errors.Is(err, errNoBackend) {
			reason = "rejected: no_backend"
			s.rejected.noBackend.Add(1)
		} else {
			s.rejected.connectFailed.Add(1)
		}
		c.closeUnserved()
		if ok, n := s.dialLog.allow(time.Now()); ok {
			s.r.log.Warn().Err(err).Str("service", s.name).Str("client", addrString(c.src)).
				Int("attempts", attempts).Int64("suppressed", n).Msg("client connection closed: no backend connected")
		}
		if cfg.accessLog {
			s.logRejected(c.src, reason, attempts, c.start, err)
		}
		s.retire(c)
		return
	}
	c.be, c.attempts = be, attempts
	c.mu.Lock()
	if c.closed { // aborted (shutdown) while connecting
		c.mu.Unlock()
		closeFD(bfd, false)
		if cfg.accessLog {
			s.logClosed(c.src, be, attempts, 0, 0, c.why, c.start)
		}
		be.release()
		s.retire(c)
		return
	}
	be.track(c)
	var header []byte // under c.mu: an abort closes the client, and its descriptor's number may be reused
	if v := cfg.ProxyProtocol; v == "v1" || v == "v2" {
		if dst == nil {
			dst = c.localAddr()
		}
		header = proxyHeader(cfg.ProxyProtocol, c.src, dst)
	}
	cfd := c.cfd
	if c.client != nil {
		if cfd, err = detach(c.client); err != nil {
			c.closed, c.client = true, nil
			c.mu.Unlock()
			closeFD(bfd, true)
			c.end(endClientError, 0, 0)
			return
		}
		c.client = nil
	}
	c.cfd = -1
	var via engine.Connecting
	if w := c.k.wait; w != nil {
		via, w.via = w.via, engine.Connecting{}
	}
	c.conn, err = s.r.eng.Start(engine.Pair{
		Client: cfd, Backend: bfd, Header: header, First: adm.first,
		Idle: cfg.Timeouts.Idle, In: &be.bytesIn, Out: &be.bytesOut, Owner: c, Via: via,
	})
	if err != nil {
		c.closed = true
		c.mu.Unlock()
		c.end(endClientError, 0, 0)
		return
	}
	c.spliced = true
	c.mu.Unlock()
}

// localAddr is the address the client connected to.
func (c *proxyConn) localAddr() *net.TCPAddr {
	if c.client != nil {
		a, _ := c.client.LocalAddr().(*net.TCPAddr)
		return a
	}
	sa, err := unix.Getsockname(c.cfd)
	if err != nil {
		return nil
	}
	return tcpAddr(sa)
}

// retire drops a client connection that ended from the books Shutdown and the
// admin API read.
func (s *service) retire(c *proxyConn) {
	if c.ticket.t != nil {
		c.ticket.release(s.r.now().UnixNano())
	}
	s.untrack(c)
	s.active.Add(-1)
	s.r.connWG.Done()
}

// end is the end of life of a connection that had a backend: it records the
// outcome, logs and releases the backend.
func (c *proxyConn) end(why ending, in, out int64) {
	s, be := c.svc, c.be
	s.recordOutcome(be, why, out)
	if c.accessLog {
		s.logClosed(c.src, be, c.attempts, in, out, why, c.start)
	}
	be.untrack(c)
	be.release()
	s.retire(c)
}

// recordOutcome tells passive checks how a connection that did connect went:
// a reset from the backend before it sent any byte is a failure.
func (s *service) recordOutcome(be *backend, why ending, out int64) {
	ok := !(why == endBackendReset && out == 0)
	if !ok {
		be.failed.Add(1)
	}
	s.recordPassive(be, ok)
}

// clientKey is the client's IP for source_hash: 4 bytes for IPv4.
func clientKey(a *net.TCPAddr) []byte {
	if a == nil {
		return nil
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		return ip4
	}
	return a.IP
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// logClosed writes the access log line of a served connection.
func (s *service) logClosed(client net.Addr, be *backend, attempts int, in, out int64, why ending, start time.Time) {
	s.r.access.Info().
		Str("client", addrString(client)).
		Str("service", s.name).
		Str("backend", be.name).
		Int("attempts", attempts).
		Int64("bytes_in", in).
		Int64("bytes_out", out).
		Dur("duration_ms", time.Since(start).Round(time.Microsecond)).
		Str("end", why.String()).
		Msg("connection closed")
}

// logRejected writes the access log line of a connection that was not served.
func (s *service) logRejected(client net.Addr, end string, attempts int, start time.Time, err error) {
	e := s.r.access.Info().
		Str("client", addrString(client)).
		Str("service", s.name).
		Int("attempts", attempts).
		Int64("bytes_in", 0).
		Int64("bytes_out", 0).
		Dur("duration_ms", time.Since(start).Round(time.Microsecond)).
		Str("end", end)
	if err != nil {
		e = e.Err(err)
	}
	e.Msg("connection closed")
}
