package etcdtest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/balancel4/balance-l4/internal/testcert"
)

// ClientCN is the common name of the client certificates. It names no etcd
// user: with client-cert-auth, etcd takes a certificate's CN as the user
// when a request carries no token.
const ClientCN = "balance-l4-test-client"

// tlsFiles are the files of a TLS cluster.
type tlsFiles struct {
	ca                    string
	serverCert, serverKey string
	clientCert, clientKey string
}

// makeTLS writes a CA, a server and a client certificate into dir.
func makeTLS(tb testing.TB, dir string) *tlsFiles {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("etcdtest: making the TLS directory: %v", err)
	}
	ca := testcert.NewCA(tb, "balance-l4 etcdtest CA")
	f := &tlsFiles{ca: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(f.ca, ca.PEM, 0o644); err != nil {
		tb.Fatalf("etcdtest: writing the CA certificate: %v", err)
	}
	f.serverCert, f.serverKey = ca.Issue(tb, "etcd", "127.0.0.1", "localhost").Write(tb, dir, "server")
	f.clientCert, f.clientKey = ca.Issue(tb, ClientCN).Write(tb, dir, "client")
	return f
}

// UntrustedClientCert writes a client certificate signed by a CA the
// cluster does not trust, for tests of a wrong certificate, and returns its
// files.
func (c *Cluster) UntrustedClientCert(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	return testcert.NewCA(tb, "untrusted CA").Issue(tb, ClientCN).Write(tb, tb.TempDir(), "untrusted-client")
}

// clientTLS is the TLS configuration of a client trusting caFile and
// presenting certFile (none when "").
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
