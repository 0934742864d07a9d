package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/config"
)

// The admin server's settings across reloads. Its certificate is re-read on
// every reload and swapped in without a restart (a renewal rewrites the
// files in place, so this happens even when the paths are unchanged); every
// other admin setting — listen, tokens, turning TLS on or off — takes effect
// at the next restart, as the reload's summary says.

// adminCertificate loads the admin certificate when c asks for TLS; nil
// means plain HTTP.
func adminCertificate(c config.Admin) (*tls.Certificate, error) {
	if !c.TLS() {
		return nil, nil
	}
	return c.LoadCertificate()
}

// reloadCertificate loads the certificate a reload to c would serve: nil
// when the running admin server serves plain HTTP or c turns TLS off (both
// wait for a restart). A failure rejects the whole reload, so a broken
// renewal leaves the running configuration — and the certificate in use —
// untouched.
func (a *App) reloadCertificate(c config.Admin) (*tls.Certificate, error) {
	if a.admin == nil || !a.admin.TLS() {
		return nil, nil
	}
	return adminCertificate(c)
}

// swapCertificate serves cert from the next TLS handshake on and returns a
// note for the reload's summary when it is a new one.
func (a *App) swapCertificate(cert *tls.Certificate, log zerolog.Logger) string {
	if cert == nil {
		return ""
	}
	changed, err := a.admin.SetCertificate(cert)
	if err != nil { // reloadCertificate checked the server serves TLS
		log.Error().Err(err).Msg("admin certificate not replaced")
		return ""
	}
	switch {
	case !changed:
		return ""
	case cert.Leaf == nil:
		return "admin TLS certificate replaced"
	}
	return "admin TLS certificate replaced (valid until " + cert.Leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST") + ")"
}

// adminNeedsRestart reports whether the admin settings changed in a way only
// a restart applies: anything but the certificate files while TLS stays on.
func adminNeedsRestart(old, cur config.Admin) bool {
	if old.TLS() && cur.TLS() {
		cur.TLSCert, cur.TLSKey = old.TLSCert, old.TLSKey
	}
	return old != cur
}

// warnAdminExposure logs the admin settings that leave it open: no token,
// or a token sent in clear text beyond loopback.
func warnAdminExposure(c config.Admin, log zerolog.Logger) {
	switch {
	case c.Token == "" && c.AllowUnauthenticated:
		log.Warn().Str("listen", c.Listen).Msg("admin server has no token: anyone who can reach it can drain backends")
	case c.Token != "" && !c.TLS() && !c.Loopback():
		log.Warn().Str("listen", c.Listen).
			Msg("admin server takes its token over plain HTTP beyond loopback: anyone on the path can read it; set admin.tls_cert and admin.tls_key")
	}
}

// openAdminListener opens the admin server's listener, or takes the one an
// old process handed over; nil when the admin server is off. The error names
// the address once, as a service's does: net's own "listen tcp ADDR: ..."
// would repeat it.
func (a *App) openAdminListener(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := a.listenFunc("admin", net.Listen)("tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return nil, fmt.Errorf("admin server: listening on %s: %w", addr, err)
	}
	return ln, nil
}
