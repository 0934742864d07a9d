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
