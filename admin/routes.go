package admin

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes registers SPEC §4's API, the metrics, the dashboard and its assets.
// Middleware order: panic recovery, security headers, body cap, token, cross-site.
// Echo runs them for unknown routes and wrong methods too, so those need the
// token like everything else and answer 404/405 in JSON.
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.recoverPanic, securityHeaders, limitBody, s.auth.middleware(s), crossSite(s))

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.log},
		ErrorHandling: promhttp.ContinueOnError,
	})))

	api := e.Group("/api/v1")
	api.GET("/services", s.listServices)
	api.GET("/services/:service", s.getService)
	api.GET("/services/:service/backends/:backend", s.getBackend)
	api.POST("/services/:service/backends/:backend/drain", s.drain)
	api.POST("/services/:service/backends/:backend/undrain", s.undrain)
	api.POST("/services/:service/backends/:backend/disconnect", s.disconnect)
	api.PUT("/services/:service/backends/:backend/weight", s.setWeight)
	api.POST("/reload", s.reload)
	api.GET("/fleet", s.getFleet)

	e.GET("/", s.dashboard)
	ui := e.Group("/ui")
	ui.GET("/services", s.uiServices)
	ui.GET("/services/:service/backends/:backend", s.uiBackend)
	ui.POST("/services/:service/backends/:backend/drain", s.uiDrain)
	ui.POST("/services/:service/backends/:backend/undrain", s.uiUndrain)
	ui.POST("/services/:service/backends/:backend/disconnect", s.uiDisconnect)
	ui.POST("/services/:service/backends/:backend/weight", s.uiSetWeight)
	ui.POST("/reload", s.uiReload)
	e.GET("/static/:name", s.assets.serve)
}

// securityHeaders keeps the dashboard out of frames, stops MIME sniffing and
// allows scripts and styles only from this server (htmx runs with allowEval
// off, so no 'unsafe-eval' is needed). Responses are not cached, except the
// static assets, which revalidate by ETag.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// recoverPanic turns a handler's panic into a logged 500 instead of a dropped
// connection.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).
					Str("path", c.Request().URL.Path).Msg("admin handler panicked")
				err = errors.New("admin: handler panicked")
			}
		}()
		return next(c)
	}
}
