package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testcert"
)

// TestAdminTLSAndReadToken runs the binary with an HTTPS admin server and a
// read-only token from the environment: the token roles hold over TLS, a
// certificate renewed in place is served after SIGHUP and after
// POST /api/v1/reload without a restart, a broken renewal is a rejected
// reload that keeps the certificate in use, and plain HTTP to the port is
// told what is wrong.
func TestAdminTLSAndReadToken(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "balance-l4 cmd test CA")
	certFile, keyFile := ca.Issue(t, "admin-1").Write(t, dir, "admin")
	backend := startEcho(t)
	adminAddr := freePort(t)
	path := writeFile(t, "balance.toml", fmt.Sprintf(`
[admin]
listen = %q
token = "full-token"
tls_cert = %q
tls_key = %q
[[services]]
name = "echo"
listen = %q
[[services.backends]]
name = "b1"
address = %q
`, adminAddr, certFile, keyFile, freePort(t), backend.Addr()))

	cmd := exec.Command(binary, "-config", path)
	cmd.Env = append(os.Environ(), "BALANCE_ADMIN_READ_TOKEN=read-token")
	p := start(t, cmd)
	waitListening(t, adminAddr)

	pool := ca.Pool()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
	}}
	call := func(method, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+adminAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	served := func() string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", adminAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return "handshake failed: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}

	// The roles, over TLS.
	if code, body := call("GET", "/api/v1/services/echo", "read-token"); code != 200 || !strings.Contains(body, `"b1"`) {
		t.Fatalf("read token GET: %d %s", code, body)
	}
	if code, body := call("GET", "/metrics", "read-token"); code != 200 || !strings.Contains(body, "balance_connections_total") {
		t.Fatalf("read token /metrics: %d %.200s", code, body)
	}
	if code, body := call("POST", "/api/v1/services/echo/backends/b1/drain", "read-token"); code != 403 || strings.TrimSpace(body) != `{"error":"read-only token"}` {
		t.Fatalf("read token drain: %d %s", code, body)
	}
	if code, _ := call("GET", "/api/v1/services", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, body := call("POST", "/api/v1/services/echo/backends/b1/drain", "full-token"); code != 200 {
		t.Fatalf("full token drain: %d %s", code, body)
	}
	var b struct{ Events []struct{ Reason string } }
	_, body := call("GET", "/api/v1/services/echo/backends/b1", "read-token")
	json.Unmarshal([]byte(body), &b)
	if len(b.Events) == 0 || !strings.Contains(b.Events[0].Reason, "drained by api 127.0.0.1:") || !strings.Contains(b.Events[0].Reason, "(token)") {
		t.Fatalf("the drain's event does not say who: %+v", b.Events)
	}
	// Log lines are written out by a goroutine of their own (nonBlocking).
	waitFor(t, "the refused change in the log", func() bool {
		return strings.Contains(p.stderr(), "refused a change asked with the read-only token")
	})

	if got := served(); got != "admin-1" {
		t.Fatalf("served %q at start", got)
	}
	// Renewed in place, then SIGHUP.
	ca.Issue(t, "admin-2").Write(t, dir, "admin")
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the renewed certificate after SIGHUP", func() bool { return served() == "admin-2" })

	// Renewed again, then POST /api/v1/reload over HTTPS.
	ca.Issue(t, "admin-3").Write(t, dir, "admin")
	code, body := call("POST", "/api/v1/reload", "full-token")
	if code != 200 || !strings.Contains(body, "admin TLS certificate replaced") {
		t.Fatalf("reload: %d %s", code, body)
	}
	if got := served(); got != "admin-3" {
		t.Fatalf("served %q after the reload, want admin-3", got)
	}
	if code, body := call("POST", "/api/v1/reload", "read-token"); code != 403 || !strings.Contains(body, "read-only token") {
		t.Fatalf("reload with the read token: %d %s", code, body)
	}

	// A broken renewal: a key that belongs to another certificate.
	os.WriteFile(keyFile, ca.Issue(t, "other").KeyPEM, 0o600)
	code, body = call("POST", "/api/v1/reload", "full-token")
	if code != 400 || !strings.Contains(body, "admin.tls_cert") || !strings.Contains(body, "does not match") {
		t.Fatalf("reload with a broken certificate: %d %s", code, body)
	}
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the SIGHUP rejection in the log", func() bool {
		return strings.Count(p.stderr(), "reload rejected") >= 2
	})
	if got := served(); got != "admin-3" {
		t.Fatalf("served %q after rejected reloads, want admin-3 still", got)
	}
	// ... and -check says the same before anyone reloads.
	if code, _, stderr := runBinary(t, "-config", path, "-check"); code != 1 || !strings.Contains(stderr, "admin.tls_cert") {
		t.Fatalf("-check with a broken key: exit %d, %s", code, stderr)
	}

	// Plain HTTP to the HTTPS port is answered with a clear 400.
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + adminAddr + "/healthz")
	if err != nil {
		t.Fatalf("plain HTTP: %v", err)
	}
	plain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(plain), "Client sent an HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP to the TLS port: %d %q", resp.StatusCode, plain)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestAdminTLSCheckErrors: -check names the admin key at fault.
func TestAdminTLSCheckErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := testcert.NewCA(t, "ca").Issue(t, "admin").Write(t, dir, "admin")
	for _, tc := range []struct{ name, admin, want string }{
		{"key missing", fmt.Sprintf("tls_cert = %q", certFile), "admin.tls_key: tls_cert and tls_key go together"},
		{"key unreadable", fmt.Sprintf("tls_cert = %q\ntls_key = %q", certFile, filepath.Join(dir, "absent.pem")), "admin.tls_key: reading key"},
		{"read token alone", `read_token = "ro"`, "admin.read_token: needs admin.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "balance.toml", "[admin]\n"+tc.admin+"\n")
			code, out, stderr := runBinary(t, "-config", path, "-check")
			if code != 1 || out != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, stderr, tc.want)
			}
		})
	}
}
