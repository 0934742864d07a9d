package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/admin/admintest"
	"github.com/balancel4/balance-l4/status"
)

func TestHealthz(t *testing.T) {
	f := newFixture(t, "")
	rec := f.request("GET", "/healthz", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /healthz = %d %q (%s), want 200 ok as text", rec.Code, rec.Body, rec.Header().Get("Content-Type"))
	}
}

func TestListServices(t *testing.T) {
	f := newFixture(t, "")
	svcs := wantJSON[[]status.Service](t, f.request("GET", "/api/v1/services", ""), http.StatusOK)
	if len(svcs) != 2 || svcs[0].Name != "web" || svcs[1].Name != "db" {
		t.Fatalf("services = %+v, want web and db", svcs)
	}
	if got := len(svcs[0].Backends); got != 3 {
		t.Fatalf("web has %d backends, want 3", got)
	}
	// The list is a bare JSON array whose objects carry SPEC §4's keys.
	rec := f.request("GET", "/api/v1/services", "")
	raw := wantJSON[[]map[string]any](t, rec, http.StatusOK)
	for _, key := range []string{"name", "listen", "algorithm", "active_connections", "total_connections",
		"rejected_connections", "backends"} {
		if _, ok := raw[0][key]; !ok {
			t.Errorf("service object lacks %q: %s", key, rec.Body)
		}
	}
	b := raw[0]["backends"].([]any)[1].(map[string]any)
	for _, key := range []string{"name", "address", "weight", "backup", "state", "health", "circuit", "eligible",
		"active_connections", "total_connections", "failed_connections", "bytes_in", "bytes_out",
		"consecutive_successes", "consecutive_failures", "error_rate", "last_check", "drained", "reason",
		"last_change", "events"} {
		if _, ok := b[key]; !ok {
			t.Errorf("backend object lacks %q", key)
		}
	}
	if _, ok := b["events"].([]any); !ok {
		t.Errorf("events = %v, want an array (never null)", b["events"])
	}
}

func TestGetServiceAndBackend(t *testing.T) {
	f := newFixture(t, "")
	svc := wantJSON[status.Service](t, f.request("GET", "/api/v1/services/db", ""), http.StatusOK)
	if svc.Name != "db" || svc.Listen != "127.0.0.1:6432" || len(svc.Backends) != 1 {
		t.Fatalf("service = %+v", svc)
	}
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/b", ""), http.StatusOK)
	if b.Name != "b" || b.State != "unhealthy" || b.Eligible || b.Reason != "health checks failing" {
		t.Fatalf("backend = %+v", b)
	}
	if b.LastCheck == nil || b.LastCheck.Error != "connection refused" {
		t.Fatalf("last_check = %+v", b.LastCheck)
	}
}

func TestBackendNameWithEscapes(t *testing.T) {
	f := newFixture(t, "")
	mustAdd(t, f.ctrl, status.Service{Name: "odd", Backends: []status.Backend{{Name: "10.0.0.1:80/x y", Address: "10.0.0.1:80", Weight: 1}}})
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/odd/backends/10.0.0.1:80%2Fx%20y", ""), http.StatusOK)
	if b.Name != "10.0.0.1:80/x y" {
		t.Fatalf("backend = %q", b.Name)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/api/v1/services/nope", "", `service "nope"`},
		{"GET", "/api/v1/services/web/backends/nope", "", `backend "nope"`},
		{"GET", "/api/v1/services/nope/backends/a", "", `service "nope"`},
		{"POST", "/api/v1/services/web/backends/nope/drain", "", `backend "nope"`},
		{"POST", "/api/v1/services/web/backends/nope/undrain", "", `backend "nope"`},
		{"POST", "/api/v1/services/nope/backends/a/disconnect", "", `service "nope"`},
		{"PUT", "/api/v1/services/web/backends/nope/weight", `{"weight": 1}`, `backend "nope"`},
		{"GET", "/api/v1/nothing", "", "no route GET /api/v1/nothing"},
		{"GET", "/no/such/page", "", "no route GET /no/such/page"},
		{"POST", "/ui/services/web/backends/nope/drain", "", `backend "nope"`},
		{"GET", "/static/missing.js", "", "/static/missing.js"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			msg := wantError(t, f.request(tc.method, tc.path, tc.body), http.StatusNotFound)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/services", "GET"},
		{"DELETE", "/api/v1/services/web", "GET"},
		{"GET", "/api/v1/services/web/backends/a/drain", "POST"},
		{"PUT", "/api/v1/services/web/backends/a/undrain", "POST"},
		{"POST", "/api/v1/services/web/backends/a/weight", "PUT"},
		{"GET", "/api/v1/reload", "POST"},
		{"POST", "/healthz", "GET"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			rec := f.request(tc.method, tc.path, "")
			msg := wantError(t, rec, http.StatusMethodNotAllowed)
			if !strings.Contains(msg, "method "+tc.method+" not allowed") {
				t.Fatalf("error = %q", msg)
			}
			if allow := rec.Header().Get("Allow"); !strings.Contains(allow, tc.allow) {
				t.Fatalf("Allow = %q, want it to list %s", allow, tc.allow)
			}
		})
	}
}

func TestDrainUndrainIdempotent(t *testing.T) {
	f := newFixture(t, "")
	for range 2 {
		b := wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/a/drain", ""), http.StatusOK)
		if b.State != "draining" || b.Eligible || b.Drained {
			t.Fatalf("after drain: state %q eligible %v drained %v, want draining, false, false (3 active)",
				b.State, b.Eligible, b.Drained)
		}
	}
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/a", ""), http.StatusOK)
	if len(b.Events) != 1 || b.Events[0].To != "draining" || !strings.Contains(b.Events[0].Reason, "api 192.0.2.7:40000") {
		t.Fatalf("events = %+v, want one change to draining by the api client", b.Events)
	}
	for range 2 {
		b = wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/a/undrain", ""), http.StatusOK)
		if b.State != "healthy" || !b.Eligible {
			t.Fatalf("after undrain: state %q eligible %v", b.State, b.Eligible)
		}
	}
	// Undrain returns to what the checks say: b is unhealthy.
	wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/b/drain", ""), http.StatusOK)
	b = wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/b/undrain", ""), http.StatusOK)
	if b.State != "unhealthy" {
		t.Fatalf("undrained unhealthy backend is %q", b.State)
	}
	calls := f.ctrl.Calls()
	if len(calls) != 6 || calls[0].Method != "Drain" || calls[0].By != "api 192.0.2.7:40000 (none)" {
		t.Fatalf("calls = %+v", calls)
	}
	if !strings.Contains(f.logs.String(), `"action":"drain"`) || !strings.Contains(f.logs.String(), `"by":"api 192.0.2.7:40000 (none)","token":"none","remote":"192.0.2.7:40000"`) {
		t.Fatalf("drain not logged with who: %s", f.logs)
	}
}

func TestDrainedWhenLastConnectionEnds(t *testing.T) {
	f := newFixture(t, "")
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/c", ""), http.StatusOK)
	if b.State != "draining" || b.Drained {
		t.Fatalf("c: state %q drained %v, want draining with a connection left", b.State, b.Drained)
	}
	if err := f.ctrl.Update("web", "c", "", func(b *status.Backend) { b.ActiveConnections = 0 }); err != nil {
		t.Fatal(err)
	}
	b = wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/c", ""), http.StatusOK)
	if !b.Drained {
		t.Fatal("drained = false with no connection left")
	}
}

func TestDisconnect(t *testing.T) {
	f := newFixture(t, "")
	body := wantJSON[map[string]int](t, f.request("POST", "/api/v1/services/web/backends/a/disconnect", ""), http.StatusOK)
	if len(body) != 1 || body["closed"] != 3 {
		t.Fatalf(`body = %v, want {"closed": 3}`, body)
	}
	body = wantJSON[map[string]int](t, f.request("POST", "/api/v1/services/web/backends/a/disconnect", ""), http.StatusOK)
	if body["closed"] != 0 {
		t.Fatalf("second disconnect closed %d, want 0", body["closed"])
	}
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/a", ""), http.StatusOK)
	if !b.Eligible {
		t.Fatal("a disconnected backend must stay eligible")
	}
}

func TestSetWeight(t *testing.T) {
	f := newFixture(t, "")
	for _, body := range []string{`{"weight": 7}`, "{\"weight\":7}\n", ` { "weight" : 7 } `} {
		b := wantJSON[status.Backend](t, f.request("PUT", "/api/v1/services/web/backends/a/weight", body), http.StatusOK)
		if b.Weight != 7 || b.ConfiguredWeight != 2 {
			t.Fatalf("body %q: weight %d (file %d), want 7 (file 2)", body, b.Weight, b.ConfiguredWeight)
		}
	}
	for _, w := range []int{0, 256} {
		b := wantJSON[status.Backend](t, f.request("PUT", "/api/v1/services/web/backends/a/weight", fmt.Sprintf(`{"weight":%d}`, w)), http.StatusOK)
		if b.Weight != w {
			t.Fatalf("weight %d: got %d", w, b.Weight)
		}
	}
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/a", ""), http.StatusOK)
	if b.Weight != 256 {
		t.Fatalf("weight after PUTs = %d", b.Weight)
	}
}

func TestSetWeightBadBodies(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "", "empty body"},
		{"unknown field", `{"weight": 1, "colour": "red"}`, `unknown field "colour"`},
		{"only unknown field", `{"wieght": 1}`, `unknown field "wieght"`},
		{"missing weight", `{}`, `missing "weight"`},
		{"null", `{"weight": null}`, `got "null"`},
		{"string", `{"weight": "3"}`, "must be an integer"},
		{"float", `{"weight": 1.5}`, "must be an integer"},
		{"exponent", `{"weight": 1e2}`, "must be an integer"},
		{"bool", `{"weight": true}`, "must be an integer"},
		{"negative", `{"weight": -1}`, "out of range 0..256"},
		{"too big", `{"weight": 257}`, "weight 257 out of range"},
		{"huge", `{"weight": 99999999999999999999999}`, "must be an integer"},
		{"trailing garbage", `{"weight": 1} x`, "trailing data"},
		{"two objects", `{"weight": 1}{"weight": 2}`, "trailing data"},
		{"array", `[{"weight": 1}]`, "must be a JSON object"},
		{"number", `5`, "must be a JSON object"},
		{"truncated", `{"weight": 1`, "ends too early"},
		{"syntax", `{"weight": 1,}`, "malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := wantError(t, f.request("PUT", "/api/v1/services/web/backends/a/weight", tc.body), http.StatusBadRequest)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not contain %q", msg, tc.want)
			}
		})
	}
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("bad bodies reached the controller: %+v", calls)
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, "")
	big := `{"weight": 1, "pad": "` + strings.Repeat("x", maxBody) + `"}`
	msg := wantError(t, f.request("PUT", "/api/v1/services/web/backends/a/weight", big), http.StatusRequestEntityTooLarge)
	if !strings.Contains(msg, "larger than 65536 bytes") {
		t.Fatalf("error = %q", msg)
	}
	// Without a Content-Length (chunked), the cap applies while reading.
	req := strings.NewReader(`{"weight": ` + strings.Repeat(" ", maxBody) + `1}`)
	rec := f.requestReader("PUT", "/api/v1/services/web/backends/a/weight", req)
	wantError(t, rec, http.StatusRequestEntityTooLarge)
	rec = f.requestReader("POST", "/ui/services/web/backends/a/weight", strings.NewReader("weight=1&pad="+strings.Repeat("x", maxBody)),
		"Content-Type: application/x-www-form-urlencoded")
	wantError(t, rec, http.StatusRequestEntityTooLarge)
}

func TestReload(t *testing.T) {
	f := newFixture(t, "")
	f.ctrl.SetReload(func(by string) (status.Reload, error) {
		return status.Reload{BackendsAdded: []string{"web/d"}, Summary: "1 backend added"}, nil
	})
	r := wantJSON[map[string]any](t, f.request("POST", "/api/v1/reload", ""), http.StatusOK)
	if r["summary"] != "1 backend added" || fmt.Sprint(r["backends_added"]) != "[web/d]" {
		t.Fatalf("reload = %v", r)
	}
	if _, ok := r["services_removed"].([]any); !ok {
		t.Fatalf("services_removed = %v, want an empty array", r["services_removed"])
	}

	f.ctrl.SetReload(func(by string) (status.Reload, error) {
		return status.Reload{}, fmt.Errorf("%w: services[1].listen: missing\nservices[0].backends[2].weight: 300 outside 0..256", status.ErrInvalid)
	})
	msg := wantError(t, f.request("POST", "/api/v1/reload", ""), http.StatusBadRequest)
	if !strings.Contains(msg, "services[1].listen: missing") || !strings.Contains(msg, "services[0].backends[2].weight") {
		t.Fatalf("reload error %q lacks an error", msg)
	}
	// Any reload failure is a 400: the running configuration is untouched.
	f.ctrl.SetReload(func(by string) (status.Reload, error) {
		return status.Reload{}, errors.New("reading /etc/balance.toml: permission denied")
	})
	msg = wantError(t, f.request("POST", "/api/v1/reload", ""), http.StatusBadRequest)
	if !strings.Contains(msg, "permission denied") {
		t.Fatalf("error = %q", msg)
	}
	if calls := f.ctrl.Calls(); len(calls) != 3 || calls[2].By != "api 192.0.2.7:40000 (none)" {
		t.Fatalf("calls = %+v", calls)
	}
	// A reload that was not tried (an upgrade in progress) is a 503.
	f.ctrl.SetReload(func(by string) (status.Reload, error) {
		return status.Reload{}, fmt.Errorf("an upgrade is in progress; try again in a moment: %w", status.ErrUnavailable)
	})
	msg = wantError(t, f.request("POST", "/api/v1/reload", ""), http.StatusServiceUnavailable)
	if !strings.Contains(msg, "upgrade is in progress") {
		t.Fatalf("error = %q", msg)
	}
}

// failingController fails with an unclassified error, which must be a 500
// that tells the client nothing of the cause.
type failingController struct{ *admintest.Controller }

func (failingController) Drain(string, string, string) (status.Backend, error) {
	return status.Backend{}, errors.New("secret internal detail")
}

func TestInternalErrorHidesDetails(t *testing.T) {
	f := newFixture(t, "")
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: failingController{f.ctrl}, Log: f.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	msg := wantError(t, f.request("POST", "/api/v1/services/web/backends/a/drain", ""), http.StatusInternalServerError)
	if strings.Contains(msg, "secret") {
		t.Fatalf("500 leaks the cause: %q", msg)
	}
}

// invalidController refuses drains as bad input, which must be a 400.
type invalidController struct{ *admintest.Controller }

func (invalidController) Drain(string, string, string) (status.Backend, error) {
	return status.Backend{}, fmt.Errorf("draining web/a: %w: backend is being removed", status.ErrInvalid)
}

func TestInvalidFromController(t *testing.T) {
	f := newFixture(t, "")
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: invalidController{f.ctrl}, Log: f.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	msg := wantError(t, f.request("POST", "/api/v1/services/web/backends/a/drain", ""), http.StatusBadRequest)
	if !strings.Contains(msg, "backend is being removed") {
		t.Fatalf("error = %q", msg)
	}
}
