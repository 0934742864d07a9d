package l4

import (
	"errors"
	"net"
	"time"
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

// serve handles one client connection from accept until it is spliced; the
// connection's last direction to finish ends it (end).
func (s *service) serve(client *net.TCPConn, cfg *serviceConfig, adm admission) {
	start := adm.start
	if start.IsZero() {
		start = time.Now()
	}
	c := &proxyConn{
		client: client, idle: cfg.Timeouts.Idle, stall: s.r.stallCheck, parkFirst: s.r.parkFirst,
		svc: s, start: start, accessLog: cfg.accessLog, parker: &s.r.parker,
		pipes: s.r.pipes, workers: s.r.workers, ticket: adm.ticket,
	}
	s.track(c)

	c.src, _ = client.RemoteAddr().(*net.TCPAddr)
	dst, _ := client.LocalAddr().(*net.TCPAddr)
	switch {
	case adm.proxied:
		if adm.src != nil && adm.dst != nil {
			c.src, dst = adm.src, adm.dst
		}
	case cfg.AcceptProxy:
		psrc, pdst, err := readProxyHeader(client, cfg.Timeouts.Connect)
		if err != nil {
			s.rejected.proxyHeader.Add(1)
			c.finish()
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
			c.finish()
			if cfg.accessLog {
				s.logRejected(c.src, "rejected: "+reason, 0, c.start, err)
			}
			s.retire(c)
			return
		}
		c.ticket = tk
	}

	cfg.retry.Budget.Deposit()
	be, conn, attempts, err := s.connect(s.r.ctx, cfg, clientKey(c.src), &c.tries)
	if err != nil {
		reason := "connect_failed"
		if errors.Is(err, errNoBackend) {
			reason = "rejected: no_backend"
			s.rejected.noBackend.Add(1)
		} else {
			s.rejected.connectFailed.Add(1)
		}
		c.finish()
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
	if !c.attach(conn) { // aborted (shutdown) while connecting
		_ = conn.Close()
		if cfg.accessLog {
			s.logClosed(c.src, be, attempts, c, c.finish(), c.start)
		}
		be.release()
		s.retire(c)
		return
	}
	be.track(c)
	if err := writeProxyHeader(conn, cfg.ProxyProtocol, c.src, dst); err != nil {
		c.abort(endBackendError, true)
		c.end()
		return
	}
	if len(adm.first) > 0 {
		n, err := conn.Write(adm.first)
		c.up.bytes.Add(int64(n))
		be.bytesIn.Add(int64(n))
		if err != nil {
			c.abort(endBackendError, true)
			c.end()
			return
		}
	}
	c.splice(&be.bytesIn, &be.bytesOut)
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

// end is a spliced connection's end of life: it closes both sockets,
// records the outcome, logs and releases the backend.
func (c *proxyConn) end() {
	why := c.finish()
	s, be := c.svc, c.be
	s.recordOutcome(be, c, why)
	if c.accessLog {
		s.logClosed(c.src, be, c.attempts, c, why, c.start)
	}
	if c.parkID != 0 {
		c.parker.leave(c)
	}
	be.untrack(c)
	be.release()
	s.retire(c)
}

// recordOutcome tells passive checks how a connection that did connect went:
// a reset from the backend before it sent any byte is a failure.
func (s *service) recordOutcome(be *backend, c *proxyConn, why ending) {
	ok := !(why == endBackendReset && c.down.bytes.Load() == 0)
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
func (s *service) logClosed(client net.Addr, be *backend, attempts int, c *proxyConn, why ending, start time.Time) {
	s.r.access.Info().
		Str("client", addrString(client)).
		Str("service", s.name).
		Str("backend", be.name).
		Int("attempts", attempts).
		Int64("bytes_in", c.up.bytes.Load()).
		Int64("bytes_out", c.down.bytes.Load()).
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
