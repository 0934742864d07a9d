package admin

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log"

	"github.com/rs/zerolog"
)

// Admin over HTTPS (SPEC §9). The certificate is held behind an atomic
// pointer that tls.Config.GetCertificate reads on every handshake, so
// SetCertificate replaces it for the next connection without a restart;
// established connections keep the one they began with.

// tlsConfig is the server's TLS configuration, serving whatever certificate
// s.cert holds.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}

// TLS reports whether the server serves HTTPS. Not judged by
// http.Server.TLSConfig: Serve fills that in for plain HTTP too.
func (s *Server) TLS() bool { return s.tls }

// SetCertificate replaces the certificate served from the next TLS handshake
// on; changed says whether it differs from the one before. It fails,
// changing nothing, when the server serves plain HTTP (the scheme is chosen
// at New) or cert is nil.
func (s *Server) SetCertificate(cert *tls.Certificate) (changed bool, err error) {
	if !s.TLS() {
		return false, errors.New("admin: serving plain HTTP: a certificate needs a restart to take effect")
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return false, errors.New("admin: no certificate")
	}
	old := s.cert.Swap(cert)
	changed = old == nil || !bytes.Equal(old.Certificate[0], cert.Certificate[0])
	if changed {
		s.logCertificate(cert)
	}
	return changed, nil
}

// logCertificate says which certificate is now served, and warns when it has
// expired or is not valid yet: clients will refuse it.
func (s *Server) logCertificate(cert *tls.Certificate) {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			s.log.Warn().Err(err).Msg("admin TLS certificate in use, but it does not parse")
			return
		}
	}
	ev, msg := s.log.Info(), "admin TLS certificate in use"
	switch now := s.now(); {
	case now.After(leaf.NotAfter):
		ev, msg = s.log.Warn(), "admin TLS certificate in use has expired: clients will refuse it"
	case now.Before(leaf.NotBefore):
		ev, msg = s.log.Warn(), "admin TLS certificate in use is not valid yet: clients will refuse it"
	}
	ev.Str("subject", leaf.Subject.String()).Strs("dns_names", leaf.DNSNames).
		Time("not_after", leaf.NotAfter).Str("serial", leaf.SerialNumber.String()).Msg(msg)
}

// serverLog sends net/http's own messages to zerolog. A failed TLS handshake
// (a browser's speculative connection closed early, a port scanner, plain
// HTTP sent to the HTTPS port, which the client itself is told about) is
// routine and goes to debug; anything else is a warning.
func serverLog(l zerolog.Logger) *log.Logger {
	return log.New(serverLogWriter{l}, "", 0)
}

type serverLogWriter struct{ log zerolog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	ev := w.log.Warn()
	if bytes.HasPrefix(p, []byte("http: TLS handshake error")) {
		ev = w.log.Debug()
	}
	ev.Str("error", msg).Msg("admin HTTP server")
	return len(p), nil
}
