package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Our own middleware rather than Echo's KeyAuth or BasicAuth: SPEC §4 wants
// 401 for a missing token (KeyAuth answers 400), the same token as Bearer or
// as a Basic password, and a second, read-only token.

// role is what a request may do, decided by the token it carries.
type role uint8

const (
	roleOpen role = iota // no token is configured: full access (loopback, or allow_unauthenticated)
	roleFull             // admin.token
	roleRead             // admin.read_token: reads everything, changes nothing
)

// kind names the role in logs and in the "by" of operator changes.
func (r role) kind() string {
	switch r {
	case roleFull:
		return "token"
	case roleRead:
		return "read"
	}
	return "none"
}

// readOnlyRefusal is the whole message of the 403 a read-only token gets for
// a change (SPEC §9).
const readOnlyRefusal = "read-only token"

// tokenAuth checks the admin tokens on every route but /healthz. A token may
// come as "Authorization: Bearer TOKEN" or as the password of HTTP Basic auth
// (any user name), which makes a browser prompt for it on the dashboard.
type tokenAuth struct {
	full, read       [sha256.Size]byte // SHA-256 of each token
	fullSet, readSet bool
}

func newTokenAuth(token, readToken string) tokenAuth {
	a := tokenAuth{fullSet: token != "", readSet: readToken != ""}
	if a.fullSet {
		a.full = sha256.Sum256([]byte(token))
	}
	if a.readSet {
		a.read = sha256.Sum256([]byte(readToken))
	}
	return a
}

// middleware rejects a request without a valid token with 401 and a
// WWW-Authenticate challenge (added by the error handler), and a read-only
// token's request with any method but GET, HEAD and OPTIONS with 403, before
// routing decides anything: a read-only credential changes nothing, whatever
// the path. Neither a token nor what the client sent is ever logged, not
// even a failed attempt's Basic user name: people type the token into the
// wrong field.
func (a tokenAuth) middleware(s *Server) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if !a.fullSet || r.URL.Path == "/healthz" {
				return next(c) // roleOpen, the zero value
			}
			given, user, ok := credentials(r)
			if !ok {
				return httpError(http.StatusUnauthorized, "missing credentials: send Authorization: Bearer TOKEN, or HTTP Basic auth with the token as password")
			}
			ro := a.check(given)
			if ro == roleOpen {
				s.log.Warn().Str("remote", r.RemoteAddr).Str("method", r.Method).
					Str("path", r.URL.Path).Msg("admin request with a wrong token")
				return httpError(http.StatusUnauthorized, "wrong token")
			}
			c.Set(ctxRole, ro)
			if user != "" {
				c.Set(ctxUser, user)
			}
			if ro == roleRead && !safeMethod(r.Method) {
				s.log.Warn().Str("remote", r.RemoteAddr).Str("method", r.Method).Str("path", r.URL.Path).
					Str("token", ro.kind()).Msg("refused a change asked with the read-only token")
				return httpError(http.StatusForbidden, readOnlyRefusal)
			}
			return next(c)
		}
	}
}

// check returns the role of the token given, roleOpen for none. Both
// comparisons always run, in constant time, on SHA-256 sums, so neither the
// timing nor the lengths say which token came close.
func (a tokenAuth) check(given string) role {
	sum := sha256.Sum256([]byte(given))
	full := subtle.ConstantTimeCompare(sum[:], a.full[:]) == 1 && a.fullSet
	read := subtle.ConstantTimeCompare(sum[:], a.read[:]) == 1 && a.readSet
	switch {
	case full:
		return roleFull
	case read:
		return roleRead
	}
	return roleOpen
}

// safeMethod: the methods that change nothing (RFC 9110 §9.2.1).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// credentials returns the token the request carries and, for Basic auth, the
// user name the client gave (informational only: any user is accepted).
func credentials(r *http.Request) (token, user string, ok bool) {
	h := r.Header.Get("Authorization")
	if scheme, rest, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest), "", true
	}
	if user, pass, found := r.BasicAuth(); found {
		return pass, user, true
	}
	return "", "", false
}

// Echo context keys: the Basic auth user name and the request's role.
const (
	ctxUser = "balance.user"
	ctxRole = "balance.role"
)

// roleOf is the role the auth middleware gave the request.
func roleOf(c echo.Context) role {
	r, _ := c.Get(ctxRole).(role)
	return r
}
