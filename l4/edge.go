package l4

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/balancel4/balance-l4/config"
)

// Why a client was closed before any backend was chosen (SPEC §9); the
// access log line gives them as its error.
var (
	errDenied      = errors.New("l4: client address is in deny")
	errNotAllowed  = errors.New("l4: client address is not in allow")
	errClientConns = errors.New("l4: client has max_connections_per_client open")
	errClientRate  = errors.New("l4: client exceeds connection_rate_per_client")
)

// clientIP is a client's address as allow, deny and the per-client table
// see it: IPv4 as IPv4, even from a dual-stack listener. It allocates
// nothing.
func clientIP(a *net.TCPAddr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return ip.Unmap()
}

// checkAddr applies a service's deny list, then its allow list: a client in
// deny, or outside a non-empty allow, is refused. An address the lists do
// not hold a prefix of its family for is judged like any other.
func checkAddr(e *config.Edge, ip netip.Addr) error {
	for _, p := range e.Deny {
		if p.Contains(ip) {
			return errDenied
		}
	}
	if len(e.Allow) == 0 {
		return nil
	}
	for _, p := range e.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	return errNotAllowed
}

// screens reports whether a service checks clients one by one.
func (c *serviceConfig) screens() bool {
	return len(c.Deny) > 0 || len(c.Allow) > 0 || c.clients != nil
}

// screen applies the service's allow/deny lists and per-client limits to a
// client, at once and before any backend is chosen. It returns the
// rejection reason (the metric's label) and why, or the client's ticket to
// release when the connection ends. It allocates nothing.
func (s *service) screen(cfg *serviceConfig, ip netip.Addr) (clientTicket, string, error) {
	if reason, err := s.screenAddr(cfg, ip); err != nil {
		return clientTicket{}, reason, err
	}
	return s.screenLimits(cfg, ip)
}

// screenAddr is screen's first half: allow and deny.
func (s *service) screenAddr(cfg *serviceConfig, ip netip.Addr) (string, error) {
	if err := checkAddr(&cfg.Edge, ip); err != nil {
		s.rejected.denied.Add(1)
		return "denied", err
	}
	return "", nil
}

// screenLimits is screen's second half: the per-client limits.
func (s *service) screenLimits(cfg *serviceConfig, ip netip.Addr) (clientTicket, string, error) {
	if cfg.clients == nil {
		return clientTicket{}, "", nil
	}
	tk, err := cfg.clients.admit(ip, s.r.now().UnixNano(), cfg.clientLimits)
	if err != nil {
		s.rejected.clientLimit.Add(1)
		return clientTicket{}, "client_limit", err
	}
	if tk.t == nil && cfg.clientLimits.maxConns > 0 {
		if ok, n := s.clientLog.allow(time.Now()); ok {
			s.r.log.Warn().Str("service", s.name).Str("client", ip.String()).Int64("suppressed", n).
				Msg("per-client table: every slot of this client's set holds a client with connections open; admitted without per-client accounting")
		}
	}
	return tk, "", nil
}

// edgeSettings fills in what c needs to screen clients: the per-client
// table is kept from old (with its clients) while limits stay on, so a
// reload does not hand every client a fresh bucket.
func (r *Runtime) edgeSettings(c, old *serviceConfig) {
	if !c.Limited() {
		return
	}
	c.clientLimits = clientLimits{
		maxConns: int32(min(c.MaxConnectionsPerClient, 1<<31-1)),
		interval: int64(c.ConnectionRatePerClient.Interval()),
		burst:    int64(c.ConnectionRatePerClient.Count),
	}
	if old != nil && old.clients != nil {
		c.clients = old.clients
		return
	}
	c.clients = newClientTable(r.rand(), r.rand())
}
