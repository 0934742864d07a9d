package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
)

// TokenEnv names the environment variable that supplies the admin token when
// the file sets none.
const TokenEnv = "BALANCE_ADMIN_TOKEN"

// ReadTokenEnv names the environment variable that supplies the read-only
// admin token when the file sets none.
const ReadTokenEnv = "BALANCE_ADMIN_READ_TOKEN"

// readAdmin reads the [admin] table. It returns the listen address when it is
// valid, for the conflict check with the services' addresses.
//
// The TLS files are read and parsed here, so -check finds a wrong path, a
// file that is not PEM or a key that does not match the certificate before a
// start or a reload does.
func readAdmin(t *table, a *Admin, getenv func(string) string) *boundListen {
	t.str("listen", &a.Listen)
	t.str("token", &a.Token)
	t.str("read_token", &a.ReadToken)
	t.boolean("allow_unauthenticated", &a.AllowUnauthenticated)
	t.str("tls_cert", &a.TLSCert)
	t.str("tls_key", &a.TLSKey)
	t.finish()
	if getenv != nil {
		if a.Token == "" {
			a.Token = getenv(TokenEnv)
		}
		if a.ReadToken == "" {
			a.ReadToken = getenv(ReadTokenEnv)
		}
	}
	checkReadToken(t, a)
	checkAdminTLS(t, a)
	if a.Listen == "" {
		return nil
	}
	p := t.path.key("listen")
	host, port, err := splitAddress(a.Listen, anyPort)
	if err != nil {
		t.c.add(p, "%v", err)
		return nil
	}
	if !isLoopback(host) && a.Token == "" && !a.AllowUnauthenticated {
		t.c.add(p, "%q is not a loopback address, so the admin server needs a token: set %s in the environment (docker run -e %s=...) or admin.token in the file, or allow_unauthenticated = true to serve without one",
			a.Listen, TokenEnv, TokenEnv)
	}
	return &boundListen{addr: newListenAddr(host, port), path: p, text: a.Listen}
}

// checkReadToken: a read-only token needs a full token beside it. Without
// one every request has full access, so the read-only token would restrict
// nothing and only suggest a protection that is not there.
func checkReadToken(t *table, a *Admin) {
	p := t.path.key("read_token")
	switch {
	case a.ReadToken == "":
	case a.Token == "":
		t.c.add(p, "needs admin.token (or %s): without it every request has full access, so a read-only token restricts nothing", TokenEnv)
	case a.ReadToken == a.Token:
		t.c.add(p, "must differ from admin.token: one token cannot be both read-only and full access")
	}
}

// checkAdminTLS: tls_cert and tls_key go together, and must be a usable pair.
func checkAdminTLS(t *table, a *Admin) {
	if (a.TLSCert == "") != (a.TLSKey == "") {
		missing := "tls_key"
		if a.TLSCert == "" {
			missing = "tls_cert"
		}
		t.c.add(t.path.key(missing), "tls_cert and tls_key go together: set both or neither")
		return
	}
	if !a.TLS() {
		return
	}
	if _, key, err := loadKeyPair(a.TLSCert, a.TLSKey); err != nil {
		t.c.add(t.path.key(key), "%v", err)
	}
}

// TLS reports whether the admin server serves HTTPS.
func (a Admin) TLS() bool { return a.TLSCert != "" }

// Loopback reports whether the admin server listens on loopback only.
func (a Admin) Loopback() bool {
	host, _, err := net.SplitHostPort(a.Listen)
	return err == nil && isLoopback(host)
}

// LoadCertificate reads and parses the admin certificate and key again (a
// reload re-reads them, so a renewed certificate needs no restart). The error
// names the key whose file is at fault.
func (a Admin) LoadCertificate() (*tls.Certificate, error) {
	cert, key, err := loadKeyPair(a.TLSCert, a.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("admin.%s: %w", key, err)
	}
	return cert, nil
}

// loadKeyPair reads a PEM certificate (with its chain) and key. On an error
// it also says which key, tls_cert or tls_key, names the file at fault; a
// pair that does not fit together is the certificate's.
func loadKeyPair(certFile, keyFile string) (cert *tls.Certificate, key string, err error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, "tls_cert", fmt.Errorf("reading certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "tls_key", fmt.Errorf("reading key: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "tls_cert", fmt.Errorf("%s and %s are not a usable certificate and key: %w", certFile, keyFile, err)
	}
	return &c, "", nil
}
