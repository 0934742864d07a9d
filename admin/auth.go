package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// tokenAuth checks the admin token on every route but /healthz. The token may
// come as "Authorization: Bearer TOKEN" or as the password of HTTP Basic auth
// (any user name), which makes a browser prompt for it on the dashboard.
type tokenAuth struct {
	sum [sha256.Size]byte // SHA-256 of the token; zero when there is none
	set bool
}

func newTokenAuth(token string) tokenAuth {
	if token == "" {
		return tokenAuth{}
	}
	return tokenAuth{sum: sha256.Sum256([]byte(token)), set: true}
}

// middleware rejects a request without the right token with 401 and a
// WWW-Authenticate challenge (added by the error handler). Neither the token
// nor what the client sent is ever logged, not even a failed attempt's Basic
// user name: people type the token into the wrong field.
func (a tokenAuth) middleware(s *Server) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if !a.set || r.URL.Path == "/healthz" {
				return next(c)
			}
			given, user, ok := credentials(r)
			if !ok {
				return httpError(http.StatusUnauthorized, "missing credentials: send Authorization: Bearer TOKEN, or HTTP Basic auth with the token as password")
			}
			if !a.matches(given) {
				s.log.Warn().Str("remote", r.RemoteAddr).Str("method", r.Method).
					Str("path", r.URL.Path).Msg("admin request with a wrong token")
				return httpError(http.StatusUnauthorized, "wrong token")
			}
			if user != "" {
				c.Set(ctxUser, user)
			}
			return next(c)
		}
	}
}

// matches compares in constant time. Hashing both sides first makes the
// comparison independent of the lengths too.
func (a tokenAuth) matches(given string) bool {
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1
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

// ctxUser is the Echo context key of the Basic auth user name.
const ctxUser = "balance.user"
