package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/balancel4/balance-l4/config"
)

// miekg/dns rather than net.Resolver: it asks a given server on any port,
// shows SERVFAIL apart from NXDOMAIN, gives the SRV answer's additional
// section (the targets' addresses) and lets a truncated answer be asked
// again over TCP, none of which the standard library exposes.

// errNoResolver is a lookup with no server to ask.
var errNoResolver = errors.New("no DNS server: set resolver, or list one in /etc/resolv.conf")

// dnsLookup asks DNS for one source's backends.
type dnsLookup struct {
	src     config.Discovery
	servers []string // host:port, asked in order until one answers
	timeout time.Duration
}

func newDNSLookup(src config.Discovery) *dnsLookup {
	l := &dnsLookup{src: src, timeout: min(src.Interval, 2*time.Second)}
	if src.Resolver != "" {
		l.servers = []string{src.Resolver}
	} else if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, s := range cc.Servers {
			l.servers = append(l.servers, net.JoinHostPort(s, cc.Port))
		}
	}
	return l
}

// lookup returns the backends the source names now. An error means the
// answer cannot be trusted (no server answered, SERVFAIL, REFUSED): the
// caller keeps what it had. NXDOMAIN and an empty answer are answers.
func (l *dnsLookup) lookup(ctx context.Context) ([]config.Backend, error) {
	if len(l.servers) == 0 {
		return nil, errNoResolver
	}
	if strings.HasPrefix(l.src.Name, "_") {
		return l.srv(ctx, dns.Fqdn(l.src.Name))
	}
	host, portStr, _ := net.SplitHostPort(l.src.Name)
	port, _ := strconv.Atoi(portStr)
	if ip, err := netip.ParseAddr(host); err == nil {
		return []config.Backend{l.backend(netip.AddrPortFrom(ip, uint16(port)).String(), ip, port, l.src.Weight, false)}, nil
	}
	addrs, err := l.addresses(ctx, dns.Fqdn(host), nil)
	if err != nil {
		return nil, err
	}
	out := make([]config.Backend, 0, len(addrs))
	for _, ip := range addrs {
		name := netip.AddrPortFrom(ip, uint16(port)).String()
		out = append(out, l.backend(name, ip, port, l.src.Weight, false))
	}
	return out, nil
}

func (l *dnsLookup) backend(name string, ip netip.Addr, port, weight int, backup bool) config.Backend {
	return config.Backend{
		Name:           name,
		Address:        netip.AddrPortFrom(ip, uint16(port)).String(),
		Weight:         weight,
		Backup:         backup || l.src.Backup,
		MaxConnections: l.src.MaxConnections,
	}
}

// srv reads an SRV name: each target is one backend named target:port, at
// the target's first address (IPv4 first). Records of the lowest priority
// are the primaries; the others are backups, used when no primary is
// eligible. An SRV weight of 0 counts as 1, and weights above 256 as 256.
func (l *dnsLookup) srv(ctx context.Context, name string) ([]config.Backend, error) {
	resp, err := l.exchange(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var srvs []*dns.SRV
	for _, rr := range resp.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 {
		return nil, nil
	}
	lowest := srvs[0].Priority
	for _, s := range srvs {
		lowest = min(lowest, s.Priority)
	}
	var out []config.Backend
	seen := map[string]bool{}
	for _, s := range srvs {
		if s.Target == "." {
			continue // "service decidedly not available" (RFC 2782)
		}
		target := strings.TrimSuffix(s.Target, ".")
		name := net.JoinHostPort(target, strconv.Itoa(int(s.Port)))
		if seen[name] {
			continue
		}
		seen[name] = true
		addrs, err := l.addresses(ctx, s.Target, resp.Extra)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", target, err)
		}
		if len(addrs) == 0 {
			continue // a target without an address cannot be a backend
		}
		w := min(max(int(s.Weight), 1), 256)
		out = append(out, l.backend(name, addrs[0], int(s.Port), w, s.Priority != lowest))
	}
	return out, nil
}

// addresses returns host's A and AAAA addresses, IPv4 first, each sorted;
// extra is an additional section that may already hold them.
func (l *dnsLookup) addresses(ctx context.Context, host string, extra []dns.RR) ([]netip.Addr, error) {
	var v4, v6 []netip.Addr
	collect := func(rrs []dns.RR) {
		for _, rr := range rrs {
			if !strings.EqualFold(rr.Header().Name, host) {
				continue
			}
			switch r := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(r.A.To4()); ok {
					v4 = append(v4, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(r.AAAA); ok {
					v6 = append(v6, ip)
				}
			}
		}
	}
	collect(extra)
	if len(v4)+len(v6) == 0 {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			resp, err := l.exchange(ctx, host, t)
			if err != nil {
				return nil, err
			}
			collect(resp.Answer)
		}
	}
	for _, l := range [][]netip.Addr{v4, v6} {
		sort.Slice(l, func(i, j int) bool { return l[i].Less(l[j]) })
	}
	return append(v4, v6...), nil
}

// exchange asks each server in turn until one gives an answer it can
// trust; a truncated UDP answer is asked again over TCP. NXDOMAIN is an
// answer (no records); SERVFAIL, REFUSED and the like are errors.
func (l *dnsLookup) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	var errs []error
	for _, server := range l.servers {
		resp, err := l.ask(ctx, m, server)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			if resp.Rcode == dns.RcodeNameError {
				resp.Answer = nil
			}
			return resp, nil
		default:
			errs = append(errs, fmt.Errorf("%s: %s for %s %s", server, dns.RcodeToString[resp.Rcode], name, dns.TypeToString[qtype]))
		}
	}
	return nil, errors.Join(errs...)
}

func (l *dnsLookup) ask(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: l.timeout}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, server)
	}
	return resp, err
}
