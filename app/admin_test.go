package app

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/internal/testcert"
	"github.com/balancel4/balance-l4/internal/testservers"
	"github.com/balancel4/balance-l4/status"
)

func TestAdminNeedsRestart(t *testing.T) {
	tlsOn := config.Admin{Listen: "127.0.0.1:9090", Token: "t", TLSCert: "a.pem", TLSKey: "a-key.pem"}
	with := func(f func(a *config.Admin)) config.Admin { a := tlsOn; f(&a); return a }
	for _, tc := range []struct {
		name     string
		old, cur config.Admin
		want     bool
	}{
		{"nothing", tlsOn, tlsOn, false},
		{"new certificate paths", tlsOn, with(func(a *config.Admin) { a.TLSCert, a.TLSKey = "b.pem", "b-key.pem" }), false},
		{"TLS off", tlsOn, with(func(a *config.Admin) { a.TLSCert, a.TLSKey = "", "" }), true},
		{"TLS on", with(func(a *config.Admin) { a.TLSCert, a.TLSKey = "", "" }), tlsOn, true},
		{"token", tlsOn, with(func(a *config.Admin) { a.Token = "u" }), true},
		{"read token", tlsOn, with(func(a *config.Admin) { a.ReadToken = "r" }), true},
		{"listen", tlsOn, with(func(a *config.Admin) { a.Listen = "127.0.0.1:9091" }), true},
	} {
		if got := adminNeedsRestart(tc.old, tc.cur); got != tc.want {
			t.Errorf("%s: adminNeedsRestart = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWarnAdminExposure(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    config.Admin
		want string // "" = no warning
	}{
		{"token in clear beyond loopback", config.Admin{Listen: "0.0.0.0:9090", Token: "t"}, "plain HTTP beyond loopback"},
		{"token in clear on every address", config.Admin{Listen: ":9090", Token: "t"}, "plain HTTP beyond loopback"},
		{"token over TLS", config.Admin{Listen: "0.0.0.0:9090", Token: "t", TLSCert: "c", TLSKey: "k"}, ""},
		{"token on loopback", config.Admin{Listen: "127.0.0.1:9090", Token: "t"}, ""},
		{"no token, allowed", config.Admin{Listen: "0.0.0.0:9090", AllowUnauthenticated: true}, "has no token"},
	} {
		var buf bytes.Buffer
		warnAdminExposure(tc.a, zerolog.New(&buf))
		if tc.want == "" && buf.Len() > 0 || tc.want != "" && !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%s: logged %q, want %q", tc.name, buf.String(), tc.want)
		}
	}
}

// A reload that turns TLS on for a server started with plain HTTP waits for
// a restart: it is not taken for a certificate renewal.
func TestReloadTurningTLSOnWaitsForRestart(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.NewCA(t, "app test CA").Issue(t, "admin").Write(t, dir, "admin")
	path := filepath.Join(dir, "balance.toml")
	os.WriteFile(path, []byte("[admin]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Start(Options{ConfigPath: path, Config: cfg, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(closedContext()) })
	os.WriteFile(path, []byte(fmt.Sprintf("[admin]\nlisten = \"127.0.0.1:0\"\ntls_cert = %q\ntls_key = %q\n", certFile, keyFile)), 0o600)
	rl, err := a.Reload("test")
	if err != nil || strings.Contains(rl.Summary, "certificate replaced") || !strings.Contains(rl.Summary, "next restart") {
		t.Fatalf("reload turning TLS on: %q, %v", rl.Summary, err)
	}
}

// In a fleet the derived admin URL says https:// when the admin server
// serves TLS, so the other instances' dashboards link to what answers.
func TestAdvertiseScheme(t *testing.T) {
	plain := config.Admin{Listen: "127.0.0.1:9090"}
	tlsOn := config.Admin{Listen: "127.0.0.1:9090", TLSCert: "c.pem", TLSKey: "k.pem"}
	if got := advertise("", plain); got != "http://127.0.0.1:9090" {
		t.Errorf("plain: %q", got)
	}
	if got := advertise("", tlsOn); got != "https://127.0.0.1:9090" {
		t.Errorf("TLS: %q", got)
	}
	if got := advertise("https://lb1.example:9090", plain); got != "https://lb1.example:9090" {
		t.Errorf("configured: %q", got)
	}
}

type syncBuffer = testservers.SyncBuffer

// TestReloadSwapsAdminCertificate runs the app with an HTTPS admin server,
// renews its certificate in place and reloads: the next handshake gets the
// new one, without a restart. A broken renewal is a reload error that leaves
// everything as it was, the certificate served included.
func TestReloadSwapsAdminCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "app test CA")
	first, second := ca.Issue(t, "admin-1"), ca.Issue(t, "admin-2")
	certFile, keyFile := first.Write(t, dir, "admin")
	path := filepath.Join(dir, "balance.toml")
	write := func(more string) {
		t.Helper()
		src := fmt.Sprintf("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"full\"\ntls_cert = %q\ntls_key = %q\n%s", certFile, keyFile, more)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := Start(Options{ConfigPath: path, Config: cfg, Log: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(closedContext()) })

	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", a.AdminAddr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "admin-1" {
		t.Fatalf("served %s at start", got)
	}

	// Renewed in place: the same paths, new files.
	second.Write(t, dir, "admin")
	rl, err := a.Reload("test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rl.Summary, "admin TLS certificate replaced (valid until") || strings.Contains(rl.Summary, "restart") {
		t.Fatalf("summary %q", rl.Summary)
	}
	if got := served(); got != "admin-2" {
		t.Fatalf("served %s after the reload, want admin-2", got)
	}
	// The same files again: nothing to say.
	if rl, err := a.Reload("test"); err != nil || strings.Contains(rl.Summary, "certificate") {
		t.Fatalf("second reload: %q, %v", rl.Summary, err)
	}

	// A broken renewal (a key that is not the certificate's) with another
	// change beside it: the reload is refused as a whole.
	running := a.Config()
	os.WriteFile(keyFile, ca.Issue(t, "other").KeyPEM, 0o600)
	write("shutdown_timeout = \"5s\"\n")
	_, err = a.Reload("test")
	if err == nil || !errors.Is(err, status.ErrInvalid) || !strings.Contains(err.Error(), "admin.tls_cert") {
		t.Fatalf("reload with a broken certificate = %v, want an invalid-config error naming admin.tls_cert", err)
	}
	if a.Config() != running {
		t.Fatal("a rejected reload changed the running configuration")
	}
	if got := served(); got != "admin-2" {
		t.Fatalf("served %s after a rejected reload, want admin-2 still", got)
	}

	// Turning TLS off waits for a restart, and says so.
	os.WriteFile(path, []byte("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"full\"\n"), 0o600)
	rl, err = a.Reload("test")
	if err != nil || !strings.Contains(rl.Summary, "admin settings changed; they take effect at the next restart") {
		t.Fatalf("reload without TLS: %q, %v", rl.Summary, err)
	}
	if got := served(); got != "admin-2" {
		t.Fatalf("served %s after TLS was turned off in the file, want admin-2 until a restart", got)
	}
	if !strings.Contains(logs.String(), `"subject":"CN=admin-2"`) {
		t.Fatalf("the new certificate is not logged:\n%s", logs)
	}
}
