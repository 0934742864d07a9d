package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ClientCN is the common name of the client certificates. It names no etcd
// user: with client-cert-auth, etcd takes a certificate's CN as the user
// when a request carries no token.
const ClientCN = "balance-l4-test-client"

// certAuthority is a CA that signs certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(name string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	return &certAuthority{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}, nil
}

// issue writes a certificate signed by ca and its key to dir/name.pem and
// dir/name-key.pem. A server certificate is for 127.0.0.1 and localhost.
// Both kinds allow client and server use: etcd's gateway dials its own
// client port with the server certificate.
func (ca *certAuthority) issue(dir, name, cn string, server bool) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating the %s key: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("signing the %s certificate: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encoding the %s key: %w", name, err)
	}
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return "", "", fmt.Errorf("writing the %s certificate: %w", name, err)
	}
	if err := os.WriteFile(keyFile, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return "", "", fmt.Errorf("writing the %s key: %w", name, err)
	}
	return certFile, keyFile, nil
}

// tlsFiles are the files of a TLS cluster.
type tlsFiles struct {
	ca                    string
	serverCert, serverKey string
	clientCert, clientKey string
}

// makeTLS writes a CA, a server and a client certificate into dir.
func makeTLS(dir string) (*tlsFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("making the TLS directory: %w", err)
	}
	ca, err := newCA("balance-l4 etcdtest CA")
	if err != nil {
		return nil, err
	}
	f := &tlsFiles{ca: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(f.ca, ca.pem, 0o644); err != nil {
		return nil, fmt.Errorf("writing the CA certificate: %w", err)
	}
	if f.serverCert, f.serverKey, err = ca.issue(dir, "server", "etcd", true); err != nil {
		return nil, err
	}
	if f.clientCert, f.clientKey, err = ca.issue(dir, "client", ClientCN, false); err != nil {
		return nil, err
	}
	return f, nil
}

// UntrustedClientCert writes a client certificate signed by a CA the
// cluster does not trust, for tests of a wrong certificate, and returns its
// files.
func (c *Cluster) UntrustedClientCert(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	ca, err := newCA("untrusted CA")
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile, err = ca.issue(tb.TempDir(), "untrusted-client", ClientCN, false)
	if err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
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

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
