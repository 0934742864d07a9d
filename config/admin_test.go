package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/internal/testcert"
)

// adminPair writes a certificate and key into a fresh directory.
func adminPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	ca := testcert.NewCA(t, "config test CA")
	return ca.Issue(t, "admin").Write(t, t.TempDir(), "admin")
}

func TestAdminTLS(t *testing.T) {
	certFile, keyFile := adminPair(t)
	cfg := mustParse(t, doc(`[admin]`, `tls_cert = "`+certFile+`"`, `tls_key = "`+keyFile+`"`))
	if !cfg.Admin.TLS() || cfg.Admin.TLSCert != certFile || cfg.Admin.TLSKey != keyFile {
		t.Fatalf("admin = %+v", cfg.Admin)
	}
	cert, err := cfg.Admin.LoadCertificate()
	if err != nil || cert.Leaf == nil || cert.Leaf.Subject.CommonName != "admin" {
		t.Fatalf("LoadCertificate = %v, %v", cert, err)
	}
	if mustParse(t, "").Admin.TLS() {
		t.Fatal("TLS on by default")
	}
}

func TestAdminTLSErrors(t *testing.T) {
	certFile, keyFile := adminPair(t)
	_, otherKey := adminPair(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600)
	absent := filepath.Join(dir, "absent.pem")
	for _, tc := range []struct {
		name   string
		lines  []string
		path   string
		line   int
		substr string
	}{
		{"cert without key", []string{`tls_cert = "` + certFile + `"`}, "admin.tls_key", 1, "set both or neither"},
		{"key without cert", []string{`tls_key = "` + keyFile + `"`}, "admin.tls_cert", 1, "set both or neither"},
		{"cert unreadable", []string{`tls_cert = "` + absent + `"`, `tls_key = "` + keyFile + `"`}, "admin.tls_cert", 2, "no such file"},
		{"key unreadable", []string{`tls_cert = "` + certFile + `"`, `tls_key = "` + absent + `"`}, "admin.tls_key", 3, "no such file"},
		{"cert not PEM", []string{`tls_cert = "` + garbage + `"`, `tls_key = "` + keyFile + `"`}, "admin.tls_cert", 2, "not a usable certificate and key"},
		{"key of another certificate", []string{`tls_cert = "` + certFile + `"`, `tls_key = "` + otherKey + `"`}, "admin.tls_cert", 2, "does not match"},
		{"key as certificate", []string{`tls_cert = "` + keyFile + `"`, `tls_key = "` + keyFile + `"`}, "admin.tls_cert", 2, "not a usable certificate"},
		{"a number", []string{`tls_cert = 1`, `tls_key = "` + keyFile + `"`}, "admin.tls_cert", 2, "must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, doc(append([]string{`[admin]`}, tc.lines...)...))
			var found bool
			for _, e := range errs {
				if e.Path == tc.path && e.Line == tc.line && strings.Contains(e.Msg, tc.substr) {
					found = true
				}
			}
			if !found {
				t.Fatalf("errors %v; want %s at line %d containing %q", errs, tc.path, tc.line, tc.substr)
			}
		})
	}
}

// A certificate that became unreadable after the file was checked is an
// error of LoadCertificate that names the key.
func TestAdminLoadCertificateNamesKey(t *testing.T) {
	certFile, keyFile := adminPair(t)
	a := Admin{TLSCert: certFile, TLSKey: keyFile}
	if _, err := a.LoadCertificate(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, []byte("renewal half written"), 0o600)
	if _, err := a.LoadCertificate(); err == nil || !strings.HasPrefix(err.Error(), "admin.tls_cert: ") {
		t.Fatalf("LoadCertificate = %v, want an error naming admin.tls_cert", err)
	}
	os.Remove(keyFile)
	if _, err := a.LoadCertificate(); err == nil || !strings.HasPrefix(err.Error(), "admin.tls_key: ") {
		t.Fatalf("LoadCertificate = %v, want an error naming admin.tls_key", err)
	}
}

func TestAdminReadToken(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name     string
		src      string
		getenv   func(string) string
		want     string
		errMatch string // "" = valid
	}{
		{"file", doc(`[admin]`, `token = "full"`, `read_token = "ro"`), nil, "ro", ""},
		{"env", doc(`[admin]`, `token = "full"`), env(ReadTokenEnv, "ro-env"), "ro-env", ""},
		{"file wins", doc(`[admin]`, `token = "full"`, `read_token = "ro"`), env(ReadTokenEnv, "ro-env"), "ro", ""},
		{"both from env", "", env(TokenEnv, "full", ReadTokenEnv, "ro"), "ro", ""},
		{"none", doc(`[admin]`, `token = "full"`), nil, "", ""},
		{"without a token", doc(`[admin]`, `read_token = "ro"`), nil, "", "admin.read_token: needs admin.token"},
		{"env without a token", "", env(ReadTokenEnv, "ro"), "", "admin.read_token: needs admin.token"},
		{"same as the token", doc(`[admin]`, `token = "same"`, `read_token = "same"`), nil, "", "admin.read_token: must differ"},
		{"read token does not open a non-loopback listen", doc(`[admin]`, `listen = "0.0.0.0:9090"`, `read_token = "ro"`), nil, "", "admin.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseWithEnv([]byte(tc.src), tc.getenv)
			if tc.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin.ReadToken != tc.want {
				t.Fatalf("read token = %q, want %q", cfg.Admin.ReadToken, tc.want)
			}
		})
	}
}

func TestAdminLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:9090": true,
		"0.0.0.0:9090": false, ":9090": false, "10.0.0.5:9090": false, "admin.example:9090": false, "": false,
	} {
		if got := (Admin{Listen: listen}).Loopback(); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", listen, got, want)
		}
	}
}
