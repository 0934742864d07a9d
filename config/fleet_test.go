package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFleet(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("x"), 0o600)
	env := map[string]string{EtcdPasswordEnv: "s3cret"}
	cfg, err := ParseWithEnv([]byte(doc(
		`[fleet]`,
		`etcd = ["https://127.0.0.1:2379", "10.0.0.6:2379"]`,
		`name = "prod-eu"`,
		`instance = "lb-1.eu"`,
		`advertise = "https://lb-1.example:9090"`,
		`request_timeout = "500ms"`,
		`publish_interval = "5s"`,
		`username = "balance"`,
		`tls_ca = "`+ca+`"`,
	)), func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("an http:// endpoint with tls_* set was accepted")
	}
	if !strings.Contains(err.Error(), "fleet.etcd[1]") || !strings.Contains(err.Error(), "https://") {
		t.Fatalf("error %q does not name fleet.etcd[1] and https", err)
	}

	cfg, err = ParseWithEnv([]byte(doc(
		`[fleet]`,
		`etcd = ["https://127.0.0.1:2379/", "https://[::1]:2379"]`,
		`name = "prod-eu"`,
		`instance = "lb-1.eu"`,
		`request_timeout = "500ms"`,
		`username = "balance"`,
		`tls_ca = "`+ca+`"`,
	)), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Fleet{Etcd: []string{"https://127.0.0.1:2379", "https://[::1]:2379"}, Name: "prod-eu", Instance: "lb-1.eu",
		DialTimeout: 2 * time.Second, RequestTimeout: 500 * time.Millisecond, PublishInterval: 2 * time.Second,
		Username: "balance", Password: "s3cret", TLSCA: ca}
	if !reflect.DeepEqual(cfg.Fleet, want) {
		t.Fatalf("fleet = %+v\nwant    %+v", cfg.Fleet, want)
	}
	if !cfg.Fleet.Enabled() || !cfg.Fleet.TLS() {
		t.Fatal("Enabled/TLS false")
	}
	if Default().Fleet.Enabled() {
		t.Fatal("a file without [fleet] is in a fleet")
	}
}

func TestFleetErrors(t *testing.T) {
	tests := []struct {
		src  string
		path string
		says string
	}{
		{`etcd = "http://127.0.0.1:2379"`, "fleet.etcd", "must be an array of strings"},
		{`etcd = [2379]`, "fleet.etcd[0]", "must be a string"},
		{`etcd = [""]`, "fleet.etcd[0]", "must not be empty"},
		{`etcd = ["ftp://127.0.0.1:2379"]`, "fleet.etcd[0]", "scheme must be http or https"},
		{`etcd = ["http://127.0.0.1"]`, "fleet.etcd[0]", ""},
		{`etcd = ["http://127.0.0.1:2379/v3"]`, "fleet.etcd[0]", "nothing after it"},
		{`name = "Prod"`, "fleet.name", "[a-z0-9_-]+"},
		{`name = ""`, "fleet.name", "[a-z0-9_-]+"},
		{`instance = "a/b"`, "fleet.instance", "part of an etcd key"},
		{`advertise = "10.0.0.5:9090"`, "fleet.advertise", "http:// or https:// URL"},
		{`dial_timeout = "0s"`, "fleet.dial_timeout", ""},
		{`request_timeout = "soon"`, "fleet.request_timeout", ""},
		{`publish_interval = "-1s"`, "fleet.publish_interval", ""},
		{`tls_ca = "/nonexistent/ca.pem"`, "fleet.tls_ca", "cannot read"},
		{`tls_key = "/dev/null"`, "fleet.tls_cert", "go together"},
		{`password = "x"`, "fleet.password", "unknown key"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(doc(`[fleet]`, tc.src)))
		if err == nil {
			t.Errorf("%s: accepted", tc.src)
			continue
		}
		if !strings.Contains(err.Error(), tc.path+":") && !strings.Contains(err.Error(), tc.path+" ") {
			t.Errorf("%s: error %q does not name %s", tc.src, err, tc.path)
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: error %q does not say %q", tc.src, err, tc.says)
		}
	}
}

func TestDiscovery(t *testing.T) {
	cfg := mustParse(t, doc(
		`[fleet]`,
		`etcd = ["127.0.0.1:2379"]`,
		`[[services]]`,
		`name = "db"`,
		`listen = "127.0.0.1:6432"`,
		`[[services.discovery]]`,
		`name = "_pg._tcp.db.internal"`,
		`resolver = "127.0.0.1:53"`,
		`hold = "1m"`,
		`[[services.discovery]]`,
		`type = "dns"`,
		`name = "db.internal:5432"`,
		`weight = 5`,
		`backup = true`,
		`[[services.discovery]]`,
		`type = "etcd"`,
	))
	want := []Discovery{
		{Type: "dns", Name: "_pg._tcp.db.internal", Resolver: "127.0.0.1:53", Interval: 5 * time.Second, Hold: time.Minute, Weight: 1},
		{Type: "dns", Name: "db.internal:5432", Interval: 5 * time.Second, Hold: 30 * time.Second, Weight: 5, Backup: true},
		{Type: "etcd", Interval: 5 * time.Second, Hold: 30 * time.Second, Weight: 1},
	}
	if !reflect.DeepEqual(cfg.Services[0].Discovery, want) {
		t.Fatalf("discovery = %+v\nwant %+v", cfg.Services[0].Discovery, want)
	}
}

func TestDiscoveryErrors(t *testing.T) {
	svc := func(lines ...string) string {
		return doc(append([]string{`[[services]]`, `name = "db"`, `listen = "127.0.0.1:6432"`, `[[services.discovery]]`}, lines...)...)
	}
	tests := []struct{ src, path, says string }{
		{svc(`type = "consul"`, `name = "x:1"`), "services[0].discovery[0].type", "dns"},
		{svc(`type = "dns"`), "services[0].discovery[0].name", "missing"},
		{svc(`name = "db.internal"`), "services[0].discovery[0].name", "SRV name"},
		{svc(`name = "_pg._tcp.db:5432"`), "services[0].discovery[0].name", "has no port"},
		{svc(`name = "x:1"`, `resolver = "8.8.8.8"`), "services[0].discovery[0].resolver", ""},
		{svc(`name = "x:1"`, `interval = "0s"`), "services[0].discovery[0].interval", ""},
		{svc(`name = "x:1"`, `weight = 300`), "services[0].discovery[0].weight", "between 0 and 256"},
		{svc(`name = "x:1"`, `colour = "red"`), "services[0].discovery[0].colour", "unknown key"},
		{svc(`type = "etcd"`), "services[0].discovery[0].type", "needs a [fleet]"},
		{doc(`[fleet]`, `etcd = ["127.0.0.1:2379"]`, `[[services]]`, `name = "db"`, `listen = "127.0.0.1:6432"`,
			`[[services.discovery]]`, `type = "etcd"`, `name = "x"`), "services[0].discovery[0].name", "does not apply"},
		{svc(`name = "x:1"`, `[[services.discovery]]`, `name = "x:1"`), "services[0].discovery[1]", "same discovery source twice"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.src))
		if err == nil {
			t.Errorf("%s: accepted", tc.src)
			continue
		}
		if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("error %q: want %s and %q", err, tc.path, tc.says)
		}
	}
}
