package admin

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// gzipMin is the smallest response worth compressing; Echo's Gzip buffers
// up to it before deciding. The dashboard of 1 000 backends is about a
// megabyte of HTML, polled every 2 s; gzip makes it a few dozen kilobytes.
const gzipMin = 8 << 10

// skipGzip says which requests Echo's Gzip leaves alone:
//   - a client that does not accept gzip. Echo only looks for "gzip" in
//     Accept-Encoding and would compress for "gzip;q=0", which refuses it;
//   - /metrics: promhttp negotiates and compresses by itself;
//   - /static/: http.ServeContent answers ranges and conditional requests
//     whose ETag and byte offsets are those of the identity file.
func skipGzip(c echo.Context) bool {
	p := c.Request().URL.Path
	return !acceptsGzip(c.Request()) || p == "/metrics" || strings.HasPrefix(p, "/static/")
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0"
		}
	}
	return false
}
