package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testcert"
)

// startTLSLine starts a TLS server with its own certificate for hosts that
// says name after the handshake, answers one line with "name:line" and
// closes. It lives as long as the test.
func startTLSLine(t *testing.T, ca *testcert.CA, name string, hosts ...string) net.Listener {
	t.Helper()
	cert := ca.Issue(t, name, hosts...).TLS(t)
	ln := tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{*cert}})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, name+":"+line)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln
}

// tlsLine connects to addr asking for serverName, trusting only ca, and
// returns the backend's name after one line's round trip.
func tlsLine(addr, serverName string, ca *testcert.CA) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: ca.Pool()})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	name, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	name = strings.TrimSuffix(name, "\n")
	io.WriteString(c, "ping\n")
	if reply, err := br.ReadString('\n'); err != nil || reply != name+":ping\n" {
		return name, fmt.Errorf("reply %q, %v", reply, err)
	}
	return name, nil
}

// metric returns one sample's value from the admin server's /metrics, or -1.
func metric(t *testing.T, adminAddr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// TestSNIRoutingEndToEnd runs the binary with services sharing one address,
// routed by SNI to TLS backends with their own certificates (passthrough:
// the client verifies the backend's certificate), a default route for
// plain TCP, an address without one, a deny list and a per-client rate; the
// rejections show in /metrics and the access log; a SIGHUP adds a route
// on the same listener.
func TestSNIRoutingEndToEnd(t *testing.T) {
	ca := testcert.NewCA(t, "e2e CA")
	db := startTLSLine(t, ca, "db", "db.example.com")
	apps := startTLSLine(t, ca, "apps", "*.apps.example.com")
	api := startTLSLine(t, ca, "api", "api.example.com")
	plain := startEcho(t)
	shared, strict, adminAddr := freePort(t), freePort(t), freePort(t)
	cfg := func(extra string) string {
		return fmt.Sprintf(`
[admin]
listen = %q
[log]
format = "json"
[health_check]
enabled = false

[[services]]
name = "db"
listen = %[2]q
sni = ["db.example.com"]
deny = ["127.0.0.2"]
[[services.backends]]
address = %[3]q

[[services]]
name = "apps"
listen = %[2]q
sni = ["*.apps.example.com"]
connection_rate_per_client = "1/h"
[[services.backends]]
address = %[4]q

[[services]]
name = "plain"
listen = %[2]q
[[services.backends]]
address = %[5]q

[[services]]
name = "strict"
listen = %[6]q
sni = ["db.example.com"]
[[services.backends]]
address = %[3]q
%[7]s`, adminAddr, shared, db.Addr(), apps.Addr(), plain.Addr(), strict, extra)
	}
	path := writeFile(t, "balance.toml", cfg(""))
	if code, _, stderr := runBinary(t, "-config", path, "-check"); code != 0 {
		t.Fatalf("-check: exit %d\n%s", code, stderr)
	}
	p := startProcess(t, "-config", path)
	waitListening(t, adminAddr)
	waitListening(t, shared)

	if name, err := tlsLine(shared, "db.example.com", ca); err != nil || name != "db" {
		t.Fatalf("db.example.com: %q, %v", name, err)
	}
	if name, err := tlsLine(shared, "shop.apps.example.com", ca); err != nil || name != "apps" {
		t.Fatalf("shop.apps.example.com: %q, %v", name, err)
	}
	c := dial(t, shared)
	roundTrip(t, c, "plain text to the default route")
	c.Close()

	// Rejections: a second apps connection within the hour (client_limit),
	// db from 127.0.0.2 (denied), plain TCP where no default route is
	// (no_route).
	if _, err := tlsLine(shared, "shop.apps.example.com", ca); err == nil {
		t.Fatal("a second apps connection within the hour was served")
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if _, err := tls.DialWithDialer(d, "tcp", shared, &tls.Config{ServerName: "db.example.com", RootCAs: ca.Pool()}); err == nil {
		t.Fatal("db from 127.0.0.2 (denied) was served")
	}
	c = dial(t, strict)
	io.WriteString(c, "no TLS\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Fatal("plain TCP was served where no default route is")
	}
	for sample, want := range map[string]float64{
		`balance_rejected_connections_total{reason="client_limit",service="apps"}`:     1,
		`balance_rejected_connections_total{reason="denied",service="db"}`:             1,
		`balance_rejected_connections_total{reason="no_route",service="strict"}`:       1,
		`balance_connections_total{backend="` + db.Addr().String() + `",service="db"}`: 1,
		`balance_service_connections_total{service="plain"}`:                           2, // and waitListening's probe
	} {
		waitFor(t, sample, func() bool { return metric(t, adminAddr, sample) == want })
	}
	for _, reason := range []string{"client_limit", "denied", "no_route"} {
		waitFor(t, "an access log line with "+reason, func() bool {
			return strings.Contains(p.stderr(), `"end":"rejected: `+reason+`"`)
		})
	}

	// SIGHUP adds a route on the shared address; the listener stays.
	os.WriteFile(path, []byte(cfg(fmt.Sprintf(`
[[services]]
name = "api"
listen = %q
sni = ["api.example.com"]
[[services.backends]]
address = %q
`, shared, api.Addr()))), 0o600)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the api route", func() bool {
		name, err := tlsLine(shared, "api.example.com", ca)
		return err == nil && name == "api"
	})
	if name, err := tlsLine(shared, "db.example.com", ca); err != nil || name != "db" {
		t.Fatalf("db after the reload: %q, %v", name, err)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr())
	}
}
