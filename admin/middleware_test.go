package admin

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/status"
)

// The Echo middleware as configured here: the headers SPEC and the dashboard
// rely on, a panic as a JSON 500, gzip where it helps and nowhere else.

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, "")
	for _, path := range []string{"/", "/api/v1/services", "/nope"} {
		rec := f.request("GET", path, "")
		h := rec.Header()
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, name, got, want)
			}
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy = %q", path, csp)
		}
		for _, absent := range []string{"X-XSS-Protection", "Strict-Transport-Security"} {
			if got := h.Get(absent); got != "" {
				t.Errorf("GET %s: %s = %q, want none", path, absent, got)
			}
		}
	}
	// The static assets keep their own caching.
	if cc := f.request("GET", "/static/dashboard.css", "").Header().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("static Cache-Control = %q", cc)
	}
}

// panickyController panics where a handler reads the services.
type panickyController struct{ Controller }

func (panickyController) Services() []status.Service { panic("a secret in the panic") }

func TestPanicIsAJSON500(t *testing.T) {
	f := newFixture(t, "")
	logs := &syncBuffer{}
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: panickyController{f.ctrl}, Log: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	msg := wantError(t, f.request("GET", "/api/v1/services", ""), http.StatusInternalServerError)
	if msg != "internal error" {
		t.Fatalf("error = %q, want the cause kept from the client", msg)
	}
	var line struct{ Panic, Stack, Path, Message string }
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if json.Unmarshal([]byte(l), &line) == nil && line.Message == "admin handler panicked" {
			break
		}
	}
	if line.Panic != "a secret in the panic" || line.Path != "/api/v1/services" || !strings.Contains(line.Stack, "panickyController") {
		t.Fatalf("panic not logged with its stack: %s", logs)
	}
	// The server still serves.
	wantJSON[status.Service](t, f.request("GET", "/api/v1/services/web", ""), http.StatusOK)
}

func TestGzip(t *testing.T) {
	f := newFixture(t, "")
	ctrl := bigController(t, f.clock, 200)
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: ctrl, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	gz := "Accept-Encoding: gzip"
	// A large JSON answer is compressed, and decodes.
	rec := f.request("GET", "/api/v1/services", "", gz)
	if rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding") {
		t.Fatalf("large JSON: Content-Encoding %q, Vary %q", rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var svcs []status.Service
	if err := json.NewDecoder(zr).Decode(&svcs); err != nil || len(svcs) == 0 {
		t.Fatalf("gunzipped JSON: %v, %d services", err, len(svcs))
	}
	// Small answers, errors, static files and the metrics (promhttp
	// compresses by itself) are not compressed by Echo.
	for _, path := range []string{"/api/v1/services/svc0/backends/b000", "/nope", "/static/htmx.min.js"} {
		if ce := f.request("GET", path, "", gz).Header().Get("Content-Encoding"); ce != "" {
			t.Errorf("GET %s: Content-Encoding %q, want none", path, ce)
		}
	}
	rec = f.request("GET", "/metrics", "", gz)
	if ce := rec.Header().Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("metrics Content-Encoding %q", ce)
	}
	zr, err = gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatalf("metrics compressed twice or not at all: %v", err)
	}
	text, _ := io.ReadAll(zr)
	if !strings.Contains(string(text), "balance_connections_total") {
		t.Fatalf("metrics after one gunzip: %.200s", text)
	}
}
