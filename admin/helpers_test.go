package admin

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/admin/admintest"
	"github.com/balancel4/balance-l4/internal/testclock"
	"github.com/balancel4/balance-l4/internal/testservers"
	"github.com/balancel4/balance-l4/status"
)

// clock is a settable time source for Options.Now and the fake controller.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 11, 3, 14, 30, 0, 0, time.UTC)) }

// fixture is a server on the fake controller with two services:
// web (a healthy, b unhealthy, c draining with one connection) and db (pg1).
type fixture struct {
	srv   *Server
	ctrl  *admintest.Controller
	clock *clock
	logs  *syncBuffer
}

func newFixture(t testing.TB, token string) *fixture {
	t.Helper()
	return newFixtureWith(t, Options{Token: token})
}

// newFixtureWith is newFixture with more options (tokens, a certificate);
// Listen, Log, Controller and Now are filled in.
func newFixtureWith(t testing.TB, o Options) *fixture {
	t.Helper()
	clk := newClock()
	ctrl := admintest.New(clk.Now)
	mustAdd(t, ctrl, status.Service{
		Name: "web", Listen: "127.0.0.1:8080", Algorithm: "round_robin",
		Backends: []status.Backend{
			{Name: "a", Address: "127.0.0.1:9001", Weight: 2, ActiveConnections: 3, TotalConnections: 10},
			{Name: "b", Address: "127.0.0.1:9002", Weight: 1, Health: "unhealthy", ConsecutiveSuccesses: 1,
				LastCheck: &status.Check{Time: clk.Now(), OK: false, DurationMS: 0.3, Error: "connection refused"}},
			{Name: "c", Address: "127.0.0.1:9003", Weight: 1, State: "draining", ActiveConnections: 1},
		},
	})
	mustAdd(t, ctrl, status.Service{
		Name: "db", Listen: "127.0.0.1:6432", Algorithm: "least_connections",
		Backends: []status.Backend{{Name: "pg1", Address: "10.0.0.11:5432", Weight: 1}},
	})
	logs := &syncBuffer{}
	o.Listen, o.Log, o.Controller, o.Now = "127.0.0.1:0", zerolog.New(logs), ctrl, clk.Now
	srv, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{srv: srv, ctrl: ctrl, clock: clk, logs: logs}
}

func mustAdd(t testing.TB, c *admintest.Controller, s status.Service) {
	t.Helper()
	if err := c.AddService(s); err != nil {
		t.Fatalf("AddService: %v", err)
	}
}

// request is one call to the handler; headers are "Name: value" strings.
func (f *fixture) request(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "192.0.2.7:40000"
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// wantJSON checks the status and JSON content type and decodes the body.
func wantJSON[T any](t *testing.T, rec *httptest.ResponseRecorder, code int) T {
	t.Helper()
	var v T
	if rec.Code != code {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json; body %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body, err)
	}
	return v
}

// wantError checks a JSON error response and returns its message.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, code int) string {
	t.Helper()
	body := wantJSON[map[string]any](t, rec, code)
	msg, ok := body["error"].(string)
	if !ok || msg == "" || len(body) != 1 {
		t.Fatalf(`body = %s, want {"error": "..."}`, rec.Body)
	}
	return msg
}

type syncBuffer = testservers.SyncBuffer

// requestReader is request with a body of unknown length (sent chunked).
func (f *fixture) requestReader(method, path string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, io.MultiReader(body))
	req.ContentLength = -1
	req.RemoteAddr = "192.0.2.7:40000"
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func demoController(clk *clock) *admintest.Controller { return admintest.Demo(clk.Now) }

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
