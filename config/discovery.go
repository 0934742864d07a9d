package config

import (
	"strings"
	"time"
)

// Discovery types, as written in the file.
const (
	DiscoveryDNS  = "dns"
	DiscoveryEtcd = "etcd"
)

func defaultDiscovery() Discovery {
	return Discovery{Type: DiscoveryDNS, Interval: 5 * time.Second, Hold: 30 * time.Second, Weight: 1}
}

// readDiscoveries reads a service's [[services.discovery]] tables.
func readDiscoveries(t *table) []Discovery {
	var out []Discovery
	seen := map[string]keyPath{}
	for _, dt := range t.tables("discovery") {
		d := readDiscovery(dt, t.c.fleet)
		if first, dup := seen[d.Key()]; dup {
			t.c.add(dt.path, "the same discovery source twice (also %s)", first)
			continue
		}
		seen[d.Key()] = dt.path
		out = append(out, d)
	}
	return out
}

// readDiscovery reads one [[services.discovery]] table. fleet says whether
// the file has a [fleet], which type "etcd" needs.
func readDiscovery(t *table, fleet bool) Discovery {
	d := defaultDiscovery()
	t.enum("type", &d.Type, DiscoveryDNS, DiscoveryEtcd)
	switch d.Type {
	case DiscoveryDNS:
		if t.required("name", &d.Name) {
			checkDNSName(t, d.Name)
		}
		if t.str("resolver", &d.Resolver) && d.Resolver != "" {
			if _, _, err := splitAddress(d.Resolver, nonZeroPort); err != nil {
				t.c.add(t.path.key("resolver"), "%v", err)
			}
		}
		t.duration("interval", &d.Interval, positive)
		t.duration("hold", &d.Hold, nonNegative)
	case DiscoveryEtcd:
		// Members come and go with their keys: a deleted key is a backend
		// that said it is leaving, or whose lease expired.
		for _, k := range []string{"name", "resolver", "interval", "hold"} {
			if t.has(k) {
				t.lookup(k)
				t.c.add(t.path.key(k), "does not apply to type \"etcd\" (members are added and removed with their keys)")
			}
		}
		if !fleet {
			t.c.add(t.path.key("type"), "\"etcd\" needs a [fleet] with etcd endpoints")
		}
	}
	t.integer("weight", &d.Weight, 0, 256)
	t.boolean("backup", &d.Backup)
	t.integer("max_connections", &d.MaxConnections, 0, noMax)
	t.finish()
	return d
}

// checkDNSName accepts an SRV name ("_pg._tcp.db.internal") or host:port.
func checkDNSName(t *table, name string) {
	p := t.path.key("name")
	if strings.HasPrefix(name, "_") {
		if strings.Contains(name, ":") || strings.ContainsAny(name, " /") {
			t.c.add(p, "an SRV name such as \"_pg._tcp.db.internal\" has no port, got %q", name)
		}
		return
	}
	if _, _, err := splitAddress(name, nonZeroPort); err != nil {
		t.c.add(p, "must be an SRV name (\"_service._tcp.domain\") or host:port for A/AAAA records: %v", err)
	}
}
