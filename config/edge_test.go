package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// edgeService is a service at lines 1-3 whose keys go on from line 4.
func edgeService(name, listen string, more ...string) []string {
	return append([]string{`[[services]]`, `name = "` + name + `"`, `listen = "` + listen + `"`}, more...)
}

func TestEdge(t *testing.T) {
	src := doc(append(append(
		edgeService("db", "127.0.0.1:8443",
			`sni = ["DB.example.com", "*.Apps.example.com"]`,
			`allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1", "::ffff:172.16.0.0/108"]`,
			`deny = ["10.1.0.0/16"]`,
			`max_connections_per_client = 4`,
			`connection_rate_per_client = "600/m"`),
		edgeService("web", "127.0.0.1:8443", `connection_rate_per_client = "20/s"`)...),
		edgeService("other", "127.0.0.1:9000")...)...)
	cfg, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	db, web, other := cfg.Services[0], cfg.Services[1], cfg.Services[2]
	if !slices.Equal(db.SNI, []string{"db.example.com", "*.apps.example.com"}) {
		t.Errorf("sni = %q", db.SNI)
	}
	wantAllow := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("172.16.0.0/12"), // the IPv4-mapped prefix, as IPv4
	}
	if !slices.Equal(db.Allow, wantAllow) || !slices.Equal(db.Deny, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}) {
		t.Errorf("allow %v deny %v", db.Allow, db.Deny)
	}
	if db.MaxConnectionsPerClient != 4 || db.ConnectionRatePerClient != (Rate{600, time.Minute}) || !db.Limited() {
		t.Errorf("limits %d %+v", db.MaxConnectionsPerClient, db.ConnectionRatePerClient)
	}
	if got := db.ConnectionRatePerClient.Interval(); got != 100*time.Millisecond {
		t.Errorf("600/m refills every %v, want 100ms", got)
	}
	if web.SNI != nil || web.ConnectionRatePerClient.String() != "20/s" {
		t.Errorf("web: sni %q rate %q", web.SNI, web.ConnectionRatePerClient)
	}
	if other.Limited() || other.Allow != nil || other.ConnectionRatePerClient.Interval() != 0 {
		t.Errorf("a service without edge keys: %+v", other.Edge)
	}

	// The defaults written out: no sni (the default route), every client,
	// nothing limited.
	cfg, err = Parse([]byte(doc(edgeService("x", "127.0.0.1:1", `sni = []`, `allow = []`, `deny = []`,
		`connection_rate_per_client = ""`, `max_connections_per_client = 0`)...)))
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Services[0].Edge; e.Limited() || e.SNI != nil || e.Allow != nil || e.Deny != nil {
		t.Fatalf("defaults: %+v", e)
	}

	// Port 0 never shares: two services on 127.0.0.1:0 each get a port.
	if _, err := Parse([]byte(doc(append(edgeService("a", "127.0.0.1:0"), edgeService("b", "127.0.0.1:0")...)...))); err != nil {
		t.Fatal(err)
	}
}

func TestEdgeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantErr
	}{
		{"a bad CIDR names its index", doc(edgeService("a", "127.0.0.1:1", `allow = ["10.0.0.0/8", "10.0.0.0/33", "fe80::1%eth0"]`)...),
			[]wantErr{{"services[0].allow[1]", 4, `got "10.0.0.0/33"`}, {"services[0].allow[2]", 4, `got "fe80::1%eth0"`}}},
		{"host bits beyond the mask", doc(edgeService("a", "127.0.0.1:1", `deny = ["10.1.2.3/8"]`)...),
			[]wantErr{{"services[0].deny[0]", 4, `write "10.0.0.0/8"`}}},
		{"a name, not an address", doc(edgeService("a", "127.0.0.1:1", `deny = ["localhost"]`)...),
			[]wantErr{{"services[0].deny[0]", 4, "must be an IP address or CIDR prefix"}}},
		{"deny as a string", doc(edgeService("a", "127.0.0.1:1", `deny = "10.0.0.0/8"`)...),
			[]wantErr{{"services[0].deny", 4, "must be an array of strings"}}},
		{"rates", doc(append(append(append(append(append(
			edgeService("a", "127.0.0.1:1", `connection_rate_per_client = "20"`),
			edgeService("b", "127.0.0.1:2", `connection_rate_per_client = "20/d"`)...),
			edgeService("c", "127.0.0.1:3", `connection_rate_per_client = "0/s"`)...),
			edgeService("d", "127.0.0.1:4", `connection_rate_per_client = "+5/s"`)...),
			edgeService("e", "127.0.0.1:5", `connection_rate_per_client = "2000000/s"`)...),
			edgeService("f", "127.0.0.1:6", `connection_rate_per_client = 20`)...)...),
			[]wantErr{
				{"services[0].connection_rate_per_client", 4, `such as "20/s", "600/m" or "100/h"`},
				{"services[1].connection_rate_per_client", 8, `got "20/d"`},
				{"services[2].connection_rate_per_client", 12, `got "0/s"`},
				{"services[3].connection_rate_per_client", 16, `got "+5/s"`},
				{"services[4].connection_rate_per_client", 20, "COUNT 1..1000000"},
				{"services[5].connection_rate_per_client", 24, "must be a string, got integer 20"},
			}},
		{"negative per-client connections", doc(edgeService("a", "127.0.0.1:1", `max_connections_per_client = -1`)...),
			[]wantErr{{"services[0].max_connections_per_client", 4, "must not be negative"}}},
		{"bad server names", doc(edgeService("a", "127.0.0.1:1", `sni = ["ok.example.com", "a.*.example.com", "bad name", "OK.example.com", "*"]`)...),
			[]wantErr{
				{"services[0].sni[1]", 4, "wildcard may only be the whole first label"},
				{"services[0].sni[2]", 4, `"bad name" is not a server name`},
				{"services[0].sni[3]", 4, "is also services[0].sni[0]"},
				{"services[0].sni[4]", 4, "wildcard"},
			}},
		{"two default routes on one listen", doc(append(append(
			edgeService("a", "127.0.0.1:443"),
			edgeService("b", "127.0.0.1:443", `sni = ["b.test"]`)...),
			edgeService("c", "127.0.0.1:443")...)...),
			[]wantErr{{"services[2].listen", 10, `"127.0.0.1:443" conflicts with services[0].listen = "127.0.0.1:443": services share a listen address only to route TLS`}}},
		{"accept_proxy must agree on a shared listen", doc(append(
			edgeService("a", "127.0.0.1:443", `sni = ["a.test"]`),
			edgeService("b", "127.0.0.1:443", `sni = ["b.test"]`, `accept_proxy = true`)...)...),
			[]wantErr{{"services[1].accept_proxy", 9, "must be false as in services[0]"}}},
		{"one name on two services of a listen", doc(append(
			edgeService("a", "127.0.0.1:443", `sni = ["x.test", "*.test"]`),
			edgeService("b", "127.0.0.1:443", `sni = ["y.test", "*.TEST"]`)...)...),
			[]wantErr{{"services[1].sni[1]", 8, `"*.test" is also services[0].sni[1]`}}},
		{"the same address written two ways still conflicts", doc(append(
			edgeService("a", ":443", `sni = ["a.test"]`),
			edgeService("b", "0.0.0.0:443", `sni = ["b.test"]`)...)...),
			[]wantErr{{"services[1].listen", 7, "conflicts with services[0].listen"}}},
		{"a service cannot share the admin address", doc(append([]string{`[admin]`, `listen = "127.0.0.1:9090"`},
			edgeService("a", "127.0.0.1:9090", `sni = ["a.test"]`)...)...),
			[]wantErr{{"services[0].listen", 5, "conflicts with admin.listen"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, tc.src, tc.want) })
	}

	// The same name on two different listens is fine, and so are two
	// services with sni and no default.
	if _, err := Parse([]byte(doc(append(append(
		edgeService("a", "127.0.0.1:443", `sni = ["x.test"]`),
		edgeService("b", "127.0.0.1:443", `sni = ["y.test"]`)...),
		edgeService("c", "127.0.0.1:444", `sni = ["x.test"]`)...)...))); err != nil {
		t.Fatal(err)
	}
}
