package admin

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// gzipMin is the smallest rendered page worth compressing. The dashboard of
// 1 000 backends is about a megabyte of HTML, polled every 2 s; gzip makes it
// a few dozen kilobytes.
const gzipMin = 8 << 10

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // the level is valid
	return w
}}

// writeHTML sends a rendered page, gzipped when it is large and the client
// accepts it.
func writeHTML(c echo.Context, code int, body []byte) error {
	r := c.Request()
	h := c.Response().Header()
	h.Add("Vary", "Accept-Encoding")
	if len(body) < gzipMin || !acceptsGzip(r) {
		return c.HTMLBlob(code, body)
	}
	var buf bytes.Buffer
	buf.Grow(len(body) / 8)
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(body); err != nil {
		return c.HTMLBlob(code, body)
	}
	if err := zw.Close(); err != nil {
		return c.HTMLBlob(code, body)
	}
	h.Set("Content-Encoding", "gzip")
	return c.Blob(code, echo.MIMETextHTMLCharsetUTF8, buf.Bytes())
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
