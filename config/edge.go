package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/balancel4/balance-l4/sni"
)

// Edge is what a service asks of a client before serving it (SPEC §9): the
// TLS server names routed to it when services share a listen address, the
// client addresses it allows or denies, and limits per client address.
type Edge struct {
	SNI                     []string       // lower-case names and "*.suffix" wildcards; empty = the address's default route
	Allow                   []netip.Prefix // empty = every client; IPv4 as IPv4 (never ::ffff:a.b.c.d)
	Deny                    []netip.Prefix
	MaxConnectionsPerClient int  // concurrent connections from one client address; 0 = unlimited
	ConnectionRatePerClient Rate // new connections per client address; zero = unlimited
}

// Limited reports whether the service limits clients one by one.
func (e *Edge) Limited() bool {
	return e.MaxConnectionsPerClient > 0 || e.ConnectionRatePerClient.Count > 0
}

// Rate is a number of events per period: "20/s" is {20, time.Second}. As a
// token bucket it holds Count tokens, starts full and refills one token
// every Interval.
type Rate struct {
	Count int           // 0 = unlimited
	Per   time.Duration // time.Second, time.Minute or time.Hour
}

// Interval is the time one token takes to come back.
func (r Rate) Interval() time.Duration {
	if r.Count <= 0 {
		return 0
	}
	return r.Per / time.Duration(r.Count)
}

// String gives the rate as the file writes it ("" for unlimited).
func (r Rate) String() string {
	if r.Count <= 0 {
		return ""
	}
	return strconv.Itoa(r.Count) + "/" + rateUnits[r.Per]
}

var rateUnits = map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}

// maxRateCount bounds a rate's count (and so its burst).
const maxRateCount = 1_000_000

// readEdge reads a service's sni, allow, deny and per-client limits.
func readEdge(t *table, e *Edge) {
	readSNI(t, &e.SNI)
	readPrefixes(t, "allow", &e.Allow)
	readPrefixes(t, "deny", &e.Deny)
	t.integer("max_connections_per_client", &e.MaxConnectionsPerClient, 0, noMax)
	var rate string
	if t.str("connection_rate_per_client", &rate) && rate != "" {
		r, err := parseRate(rate)
		if err != nil {
			t.c.add(t.path.key("connection_rate_per_client"), "%v", err)
		} else {
			e.ConnectionRatePerClient = r
		}
	}
}

func readSNI(t *table, dst *[]string) {
	var names []string
	if !t.strList("sni", &names) {
		return
	}
	p := t.path.key("sni")
	if len(names) == 0 {
		return // the default route, as when sni is left out
	}
	out := make([]string, 0, len(names))
	first := map[string]int{}
	for i, n := range names {
		pat, err := sni.Pattern(n)
		if err != nil {
			t.c.add(p.index(i), "%q is not a server name: %v", n, err)
			continue
		}
		if j, dup := first[pat]; dup {
			t.c.add(p.index(i), "%q is also %s", n, p.index(j))
			continue
		}
		first[pat] = i
		out = append(out, pat)
	}
	if len(out) == len(names) {
		*dst = out
	}
}

// readPrefixes reads a list of CIDR prefixes or single addresses.
func readPrefixes(t *table, key string, dst *[]netip.Prefix) {
	var texts []string
	if !t.strList(key, &texts) {
		return
	}
	if len(texts) == 0 {
		return // every client, as when the key is left out
	}
	p := t.path.key(key)
	out := make([]netip.Prefix, 0, len(texts))
	for i, s := range texts {
		pfx, err := parsePrefix(s)
		if err != nil {
			t.c.add(p.index(i), "%v", err)
			continue
		}
		out = append(out, pfx)
	}
	if len(out) == len(texts) {
		*dst = out
	}
}

// parsePrefix reads "10.0.0.0/8", "2001:db8::/32" or one address ("10.0.0.1",
// "::1"). Host bits set under the mask are a mistake worth naming, and an
// IPv4-mapped IPv6 prefix is taken as the IPv4 prefix it means (clients are
// compared as IPv4).
func parsePrefix(s string) (netip.Prefix, error) {
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return pfx, fmt.Errorf("must be an IP address or CIDR prefix such as \"10.0.0.0/8\" or \"2001:db8::/32\", got %q", s)
		}
		if m := p.Masked(); m != p {
			return pfx, fmt.Errorf("%q has bits set beyond its /%d mask: write %q", s, p.Bits(), m.String())
		}
		pfx = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return pfx, fmt.Errorf("must be an IP address or CIDR prefix such as \"10.0.0.0/8\" or \"2001:db8::/32\", got %q", s)
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx, nil
}

// parseRate reads "COUNT/UNIT" with UNIT s, m or h.
func parseRate(s string) (Rate, error) {
	bad := fmt.Errorf(`must be COUNT/UNIT such as "20/s", "600/m" or "100/h" (COUNT 1..%d, UNIT s, m or h), got %q`, maxRateCount, s)
	count, unit, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || count[0] == '+' || count[0] == '-' || n < 1 || n > maxRateCount {
		return Rate{}, bad
	}
	for per, u := range rateUnits {
		if unit == u {
			return Rate{Count: n, Per: per}, nil
		}
	}
	return Rate{}, bad
}

// sharedListens collects the services' listen addresses to judge, once all
// are read, the ones several services share (SNI routing).
type sharedListens []sharedListen

type sharedListen struct {
	path   keyPath // the service's table
	listen string
	svc    *Service
}

// shares reports whether two services may listen on the same address: when
// they write it the same way (and it names its port). Whether they set sni
// as they must is judged by sharedListens.check.
func (l *boundListen) shares(other boundListen) bool {
	return l.text == other.text && l.path[0] == "services" && other.path[0] == "services"
}

// add records a service whose listen address is valid.
func (s *sharedListens) add(path keyPath, svc Service, l *boundListen) {
	if l != nil && l.addr.port != 0 {
		*s = append(*s, sharedListen{path: path, listen: l.text, svc: &svc})
	}
}

// check reports, for every address several services share: a second
// service without sni (only one may be the default route), accept_proxy
// set differently (the PROXY header comes before the ClientHello, so the
// address reads it or not before it knows the service), and a name routed
// to two services.
func (s sharedListens) check(c *checker) {
	groups := map[string][]sharedListen{}
	for _, l := range s {
		groups[l.listen] = append(groups[l.listen], l)
	}
	for _, l := range s {
		g := groups[l.listen]
		if len(g) < 2 || g[0].path.String() != l.path.String() {
			continue
		}
		var dflt *sharedListen
		names := map[string]keyPath{}
		for i := range g {
			m := &g[i]
			if len(m.svc.SNI) == 0 {
				if dflt != nil {
					c.add(m.path.key("listen"), "%q conflicts with %s = %q: services share a listen address only to route TLS by server name, each but one (the default route) setting sni",
						m.listen, dflt.path.key("listen"), dflt.listen)
				} else {
					dflt = m
				}
			}
			if m.svc.AcceptProxy != g[0].svc.AcceptProxy {
				c.add(m.path.key("accept_proxy"), "must be %t as in %s, which shares listen %q: the PROXY header comes before the TLS ClientHello that picks the service",
					g[0].svc.AcceptProxy, g[0].path, m.listen)
			}
			for j, n := range m.svc.SNI {
				p := m.path.key("sni").index(j)
				if first, dup := names[n]; dup {
					c.add(p, "%q is also %s, on the same listen %q: a name routes to one service", n, first, m.listen)
				} else {
					names[n] = p
				}
			}
		}
	}
}
