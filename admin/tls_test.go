package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testcert"
)

// servedSerial makes a new TLS connection to addr, trusting pool, and
// returns the serial of the certificate the server presented.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func httpsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
	}}
}

func TestAdminTLSSwapsCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "admin test CA")
	first, second := ca.Issue(t, "admin-1"), ca.Issue(t, "admin-2")
	f := newFixtureWith(t, Options{Token: testToken, ReadToken: testReadToken, Certificate: first.TLS(t)})
	if !f.srv.TLS() {
		t.Fatal("TLS() = false with a certificate")
	}
	startServer(t, f)
	addr := f.srv.Addr().String()
	client := httpsClient(ca.Pool())

	if got := servedSerial(t, addr, ca.Pool()); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("served serial %s, want the first certificate's", got)
	}
	req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/services", nil)
	req.Header.Set("Authorization", "Bearer "+testReadToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET over HTTPS = %d", resp.StatusCode)
	}

	// A connection made before the swap keeps its certificate; the next
	// handshake gets the new one, without a restart.
	before, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	changed, err := f.srv.SetCertificate(second.TLS(t))
	if err != nil || !changed {
		t.Fatalf("SetCertificate = %v, %v", changed, err)
	}
	if got := servedSerial(t, addr, ca.Pool()); got != second.Leaf.SerialNumber.String() {
		t.Fatalf("served serial %s after the swap, want the second certificate's", got)
	}
	if got := before.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Fatalf("an established connection changed certificate")
	}
	if changed, err := f.srv.SetCertificate(second.TLS(t)); err != nil || changed {
		t.Fatalf("the same certificate again: changed %v, %v", changed, err)
	}
	if _, err := f.srv.SetCertificate(nil); err == nil {
		t.Fatal("SetCertificate(nil) succeeded")
	}
	if got := servedSerial(t, addr, ca.Pool()); got != second.Leaf.SerialNumber.String() {
		t.Fatal("a refused SetCertificate changed the certificate")
	}
	if logs := f.logs.String(); strings.Count(logs, "admin TLS certificate in use") != 2 || !strings.Contains(logs, "CN=admin-2") {
		t.Fatalf("certificate changes not logged once each:\n%s", logs)
	}

	// A client that does not trust the CA is refused by its own check.
	if _, err := tls.Dial("tcp", addr, &tls.Config{}); err == nil {
		t.Fatal("a client without the CA completed the handshake")
	}
}

// Plain HTTP sent to the HTTPS port gets net/http's clear 400, not a hang or
// a reset.
func TestAdminTLSRefusesPlainHTTP(t *testing.T) {
	ca := testcert.NewCA(t, "admin test CA")
	f := newFixtureWith(t, Options{Token: testToken, Certificate: ca.Issue(t, "admin").TLS(t)})
	startServer(t, f)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + f.srv.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP: %d %q", resp.StatusCode, body)
	}
	// net/http's complaint goes to the log at debug, not to stderr; it is
	// written after the answer, so wait for it (bounded).
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(f.logs.String(), "HTTP request to an HTTPS server"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("handshake error not in the log:\n%s", f.logs)
		}
	}
}

func TestPlainServerRefusesCertificate(t *testing.T) {
	f := newFixture(t, "")
	if f.srv.TLS() {
		t.Fatal("TLS() = true without a certificate")
	}
	ca := testcert.NewCA(t, "admin test CA")
	if _, err := f.srv.SetCertificate(ca.Issue(t, "admin").TLS(t)); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("SetCertificate on a plain server = %v", err)
	}
	startServer(t, f)
	// Serving does not make it look like TLS (net/http fills in a TLSConfig of its own).
	if f.srv.TLS() {
		t.Fatal("TLS() = true after Start without a certificate")
	}
	if _, err := f.srv.SetCertificate(ca.Issue(t, "admin").TLS(t)); err == nil {
		t.Fatal("SetCertificate on a running plain server succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+f.srv.Addr().String()+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain GET = %d", resp.StatusCode)
	}
}
