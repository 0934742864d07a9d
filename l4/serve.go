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

// serve handles one client connection from accept to close.
func (s *service) serve(client *net.TCPConn, cfg *serviceConfig) {
	defer s.r.connWG.Done()
	defer s.active.Add(-1)
	start := time.Now()
	c := &proxyConn{client: client, idle: cfg.Timeouts.Idle}
	s.track(c)
	defer s.untrack(c)

	src, _ := client.RemoteAddr().(*net.TCPAddr)
	dst, _ := client.LocalAddr().(*net.TCPAddr)
	if cfg.AcceptProxy {
		psrc, pdst, err := readProxyHeader(client, cfg.Timeouts.Connect)
		if err != nil {
			s.rejected.proxyHeader.Add(1)
			c.finish()
			if cfg.accessLog {
				s.logRejected(src, "rejected: proxy_header", 0, start, err)
			}
			return
		}
		if psrc != nil && pdst != nil {
			src, dst = psrc, pdst
		}
	}

	cfg.retry.Budget.Deposit()
	be, conn, attempts, err := s.connect(s.r.ctx, cfg, clientKey(src), &c.tries)
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
			s.r.log.Warn().Err(err).Str("service", s.name).Str("client", addrString(src)).
				Int("attempts", attempts).Int64("suppressed", n).Msg("client connection closed: no backend connected")
		}
		if cfg.accessLog {
			s.logRejected(src, reason, attempts, start, err)
		}
		return
	}
	defer be.release()
	if !c.attach(conn) { // aborted (shutdown) while connecting
		_ = conn.Close()
		if cfg.accessLog {
			s.logClosed(src, be, attempts, c, c.finish(), start)
		}
		return
	}
	be.track(c)
	defer be.untrack(c)

	var why ending
	if err := writeProxyHeader(conn, cfg.ProxyProtocol, src, dst); err != nil {
		c.abort(endBackendError, true)
		why = c.finish()
	} else {
		why = c.splice(&be.bytesIn, &be.bytesOut)
	}
	s.recordOutcome(be, c, why)
	if cfg.accessLog {
		s.logClosed(src, be, attempts, c, why, start)
	}
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
	s.r.log.Info().
		Str("client", addrString(client)).
		Str("service", s.name).
		Str("backend", be.name).
		Int("attempts", attempts).
		Int64("bytes_in", c.up.bytes.Load()).
		Int64("bytes_out", c.down.bytes.Load()).
		Dur("duration", time.Since(start)).
		Str("end", why.String()).
		Msg("connection closed")
}

// logRejected writes the access log line of a connection that was not served.
func (s *service) logRejected(client net.Addr, end string, attempts int, start time.Time, err error) {
	e := s.r.log.Info().
		Str("client", addrString(client)).
		Str("service", s.name).
		Int("attempts", attempts).
		Int64("bytes_in", 0).
		Int64("bytes_out", 0).
		Dur("duration", time.Since(start)).
		Str("end", end)
	if err != nil {
		e = e.Err(err)
	}
	e.Msg("connection closed")
}
