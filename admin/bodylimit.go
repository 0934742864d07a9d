package admin

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// maxBody caps every request body; the largest legitimate one is a weight form.
const maxBody = 64 << 10

// limitBody refuses a declared Content-Length over maxBody at once and caps
// what a chunked body may deliver; reading past the cap fails with an
// *http.MaxBytesError, which the error handler turns into 413.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxBody {
			return &http.MaxBytesError{Limit: maxBody}
		}
		r.Body = http.MaxBytesReader(c.Response().Writer, r.Body, maxBody)
		return next(c)
	}
}
