package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/balancel4/balance-l4/status"
)

// errorBody is the JSON shape of every error response (SPEC §4).
type errorBody struct {
	Error string `json:"error"`
}

// handleError is Echo's HTTPErrorHandler: every error, Echo's own 404 and 405
// included, becomes {"error": "..."} with a fitting status. Controller errors
// are classified by status.ErrNotFound (404), status.ErrInvalid (400) and
// status.ErrUnavailable (503, the fleet store cannot be reached); anything else
// is a 500 whose details go to the log, not to the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := s.classify(err, c)
	if code == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="balance-l4", charset="UTF-8"`)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(code)
	} else {
		err = c.JSON(code, errorBody{Error: msg})
	}
	if err != nil {
		s.log.Debug().Err(err).Str("path", c.Request().URL.Path).Msg("writing error response")
	}
}

func (s *Server) classify(err error, c echo.Context) (int, string) {
	var he *echo.HTTPError
	switch {
	case errors.Is(err, status.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, status.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, status.ErrUnavailable):
		return http.StatusServiceUnavailable, err.Error()
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusRequestEntityTooLarge: // from Echo's BodyLimit
			return he.Code, fmt.Sprintf("request body larger than %d bytes", maxBody)
		case http.StatusNotFound:
			return he.Code, fmt.Sprintf("no route %s %s", c.Request().Method, c.Request().URL.Path)
		case http.StatusMethodNotAllowed:
			msg := fmt.Sprintf("method %s not allowed on %s", c.Request().Method, c.Request().URL.Path)
			if allow := c.Response().Header().Get(echo.HeaderAllow); allow != "" {
				msg += "; allowed: " + allow
			}
			return he.Code, msg
		}
		if m, ok := he.Message.(string); ok && m != "" {
			return he.Code, m
		}
		return he.Code, http.StatusText(he.Code)
	}
	s.log.Error().Err(err).Str("method", c.Request().Method).Str("path", c.Request().URL.Path).Msg("admin request failed")
	return http.StatusInternalServerError, "internal error"
}

// tooLarge reports whether err is Echo's BodyLimit refusing a body.
func tooLarge(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge
}

// httpError is a client error with its status, for handlers.
func httpError(code int, format string, args ...any) *echo.HTTPError {
	return echo.NewHTTPError(code, fmt.Sprintf(format, args...))
}
