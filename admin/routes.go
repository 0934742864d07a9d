package admin

import (
	"compress/gzip"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes registers SPEC §4's API, the metrics, the dashboard and its assets.
// Middleware order: panic recovery, security headers, no caching, body cap,
// token and role, cross-site, gzip. Echo runs them for unknown routes and
// wrong methods too, so those need the token like everything else and answer
// 404/405 in JSON. The request time limit wraps all of Echo (timeout.go).
func (s *Server) routes(e *echo.Echo) {
	e.Use(
		middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}),
		middleware.SecureWithConfig(securityHeaders),
		noStore,
		middleware.BodyLimit(strconv.Itoa(maxBody)),
		s.auth.middleware(s),
		crossSite(s),
		middleware.GzipWithConfig(middleware.GzipConfig{Level: gzip.BestSpeed, MinLength: gzipMin, Skipper: skipGzip}),
	)

	getHead(e, "/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	getHead(e, "/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.log},
		ErrorHandling: promhttp.ContinueOnError,
	})))

	api := e.Group("/api/v1")
	getHead(api, "/services", s.listServices)
	getHead(api, "/services/:service", s.getService)
	getHead(api, "/services/:service/backends/:backend", s.getBackend)
	api.POST("/services/:service/backends/:backend/drain", s.drain)
	api.POST("/services/:service/backends/:backend/undrain", s.undrain)
	api.POST("/services/:service/backends/:backend/disconnect", s.disconnect)
	api.PUT("/services/:service/backends/:backend/weight", s.setWeight)
	api.POST("/reload", s.reload)
	getHead(api, "/fleet", s.getFleet)
	getHead(api, "/info", s.getInfo)

	getHead(e, "/", s.dashboard)
	ui := e.Group("/ui")
	ui.GET("/services", s.uiServices)
	ui.GET("/services/:service/backends/:backend", s.uiBackend)
	ui.POST("/services/:service/backends/:backend/drain", s.uiDrain)
	ui.POST("/services/:service/backends/:backend/undrain", s.uiUndrain)
	ui.POST("/services/:service/backends/:backend/disconnect", s.uiDisconnect)
	ui.POST("/services/:service/backends/:backend/weight", s.uiSetWeight)
	ui.POST("/reload", s.uiReload)
	getHead(e, "/static/:name", s.assets.serve)
}

// getRouter is what *echo.Echo and *echo.Group share for registering routes.
type getRouter interface {
	GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
	HEAD(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
}

// getHead registers h for GET and HEAD: monitors and load balancers often
// probe with HEAD (HEAD /healthz), and net/http sends no body for it.
func getHead(r getRouter, path string, h echo.HandlerFunc) {
	r.GET(path, h)
	r.HEAD(path, h)
}

// securityHeaders keeps the dashboard out of frames, stops MIME sniffing and
// allows scripts and styles only from this server (htmx runs with allowEval
// off, so no 'unsafe-eval' is needed). No X-XSS-Protection (Echo's default
// sets one): browsers dropped the filter, and where it remains it can be
// abused; the CSP is the protection. No HSTS: it would bind every port of the
// host name to HTTPS, not only this one.
var securityHeaders = middleware.SecureConfig{
	ContentTypeNosniff: "nosniff",
	XFrameOptions:      "DENY",
	ReferrerPolicy:     "no-referrer",
	ContentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

// noStore keeps responses out of caches (Echo's Secure sets no
// Cache-Control); the static assets set their own, revalidated by ETag.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return next(c)
	}
}

// maxBody caps every request body; the largest legitimate one is a weight
// form. Echo's BodyLimit refuses a larger Content-Length at once and fails
// the read past the cap of a chunked body, both with a 413 (errors.go words it).
const maxBody = 64 << 10

// logPanic logs a handler's panic with its stack and hands the error handler
// a plain error, so the client gets a 500 that says nothing of the cause.
func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.log.Error().Str("panic", err.Error()).Bytes("stack", stack).
		Str("method", c.Request().Method).Str("path", c.Request().URL.Path).Msg("admin handler panicked")
	return errHandlerPanicked
}

var errHandlerPanicked = errors.New("admin: handler panicked")
