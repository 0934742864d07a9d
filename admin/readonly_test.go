package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/balancel4/balance-l4/status"
)

const testReadToken = "r3ad-only"

func newReadFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, Options{Token: testToken, ReadToken: testReadToken})
}

// everyRoute lists the server's routes as Echo has them, with the path
// parameters filled in for the fixture's web/a, so a route added later is
// covered without editing this test.
func everyRoute(t *testing.T, f *fixture) []*echo.Route {
	t.Helper()
	e := echo.New()
	f.srv.routes(e)
	routes := e.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, r := range routes {
		r.Path = strings.NewReplacer(":service", "web", ":backend", "a", ":name", "dashboard.css").Replace(r.Path)
	}
	return routes
}

func TestReadOnlyTokenOnEveryRoute(t *testing.T) {
	f := newReadFixture(t)
	read := "Authorization: Bearer " + testReadToken
	var changes int
	for _, r := range everyRoute(t, f) {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			body := ""
			if r.Method == http.MethodPut {
				body = `{"weight": 3}`
			}
			rec := f.request(r.Method, r.Path, body, read)
			switch r.Method {
			case http.MethodGet, http.MethodHead: // a read, HEAD without a body
				want := http.StatusOK
				if r.Path == "/api/v1/fleet" {
					want = http.StatusNotFound // outside a fleet, read-only or not
				}
				if rec.Code != want {
					t.Fatalf("status %d, want %d: %.200s", rec.Code, want, rec.Body)
				}
			case http.MethodPost, http.MethodPut:
				changes++
				if rec.Code != http.StatusForbidden || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Fatalf("status %d %q, want a JSON 403: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
				}
				var got map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || !reflect.DeepEqual(got, map[string]any{"error": "read-only token"}) {
					t.Fatalf(`body %s, want exactly {"error": "read-only token"}`, rec.Body)
				}
			default:
				t.Fatalf("a route with method %s: say here what the read-only token gets", r.Method)
			}
		})
	}
	if changes < 8 {
		t.Fatalf("only %d POST/PUT routes tried", changes)
	}
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("read-only requests reached the controller: %+v", calls)
	}
	// As Basic auth (a browser), and with a method no route has.
	for _, h := range []string{basic("viewer", testReadToken), read} {
		for _, m := range []string{"POST", "DELETE", "PATCH"} {
			if msg := wantError(t, f.request(m, "/api/v1/services/web/backends/a/drain", "", h), http.StatusForbidden); msg != "read-only token" {
				t.Fatalf("%s: error %q", m, msg)
			}
		}
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "refused a change asked with the read-only token") || !strings.Contains(logs, `"token":"read"`) ||
		!strings.Contains(logs, `"remote":"192.0.2.7:40000"`) {
		t.Fatalf("refusals not logged with the token kind and address:\n%s", logs)
	}
	if strings.Contains(logs, testReadToken) || strings.Contains(logs, testToken) {
		t.Fatal("a token is in the log")
	}
}

func TestReadOnlyTokenReadsMetrics(t *testing.T) {
	f := newReadFixture(t)
	rec := f.request("GET", "/metrics", "", "Authorization: Bearer "+testReadToken)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `balance_connections_total{backend="a",service="web"}`) {
		t.Fatalf("metrics with the read token: %d %.300s", rec.Code, rec.Body)
	}
}

func TestFullTokenBesideReadToken(t *testing.T) {
	f := newReadFixture(t)
	full := "Authorization: Bearer " + testToken
	b := wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/a/drain", "", full), http.StatusOK)
	if b.State != "draining" {
		t.Fatalf("state %q after a drain with the full token", b.State)
	}
	wantJSON[status.Backend](t, f.request("PUT", "/api/v1/services/web/backends/a/weight", `{"weight": 4}`, basic("alice", testToken)), http.StatusOK)
	calls := f.ctrl.Calls()
	if len(calls) != 2 || calls[0].By != "api 192.0.2.7:40000 (token)" || calls[1].By != "api alice@192.0.2.7:40000 (token)" {
		t.Fatalf("calls = %+v", calls)
	}
	b = wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/a", "", full), http.StatusOK)
	if len(b.Events) == 0 || !strings.Contains(b.Events[0].Reason, "(token)") || !strings.Contains(b.Events[0].Reason, "192.0.2.7:40000") {
		t.Fatalf("events = %+v, want who made the change", b.Events)
	}
	if !strings.Contains(f.logs.String(), `"by":"api 192.0.2.7:40000 (token)","token":"token","remote":"192.0.2.7:40000","action":"drain"`) {
		t.Fatalf("the drain is not logged with who made it:\n%s", f.logs)
	}
	// Wrong and missing tokens are still 401, the read token's prefix too.
	for _, h := range []string{"Authorization: Bearer nope", "Authorization: Bearer " + testReadToken[:4], ""} {
		wantError(t, f.request("GET", "/api/v1/services", "", h), http.StatusUnauthorized)
		wantError(t, f.request("POST", "/api/v1/services/web/backends/a/undrain", "", h), http.StatusUnauthorized)
	}
}

func TestNewRejectsReadTokenAlone(t *testing.T) {
	f := newFixture(t, "")
	for _, o := range []Options{{ReadToken: "r"}, {Token: "same", ReadToken: "same"}} {
		o.Listen, o.Controller = "127.0.0.1:0", f.ctrl
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), "ReadToken") {
			t.Fatalf("New(%+v) = %v", o, err)
		}
	}
}

// The dashboard hides every action from the read-only token on the server:
// the controls are not rendered, not merely hidden.
func TestDashboardReadOnly(t *testing.T) {
	f := newReadFixture(t)
	controls := []string{`hx-post`, `<form`, `name="weight"`, `id="reload"`, `>drain<`, `>undrain<`, `>disconnect<`}
	for _, path := range []string{"/", "/ui/services", "/ui/services/web/backends/a", "/ui/services/web/backends/c"} {
		ro := f.request("GET", path, "", basic("viewer", testReadToken))
		full := f.request("GET", path, "", basic("ops", testToken))
		if ro.Code != http.StatusOK || full.Code != http.StatusOK {
			t.Fatalf("GET %s: %d read-only, %d full", path, ro.Code, full.Code)
		}
		for _, c := range controls {
			if strings.Contains(ro.Body.String(), c) {
				t.Errorf("GET %s with the read-only token renders %s", path, c)
			}
		}
		if !strings.Contains(full.Body.String(), `hx-post`) || !strings.Contains(full.Body.String(), `name="weight"`) {
			t.Errorf("GET %s with the full token lacks the controls", path)
		}
		// The weight itself is still shown.
		if path == "/ui/services/web/backends/a" && !strings.Contains(ro.Body.String(), `<span class="weight-value">2</span>`) {
			t.Errorf("read-only row does not show the weight: %s", ro.Body)
		}
	}
	page := f.request("GET", "/", "", basic("viewer", testReadToken)).Body.String()
	if !strings.Contains(page, `id="read-only"`) {
		t.Error("the read-only page does not say it is read-only")
	}
}
