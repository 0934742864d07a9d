package admin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/admin/admintest"
	"github.com/balancel4/balance-l4/status"
)

// The fake is a FleetController; it acts as one only after SetFleet.
var _ FleetController = (*admintest.Controller)(nil)

const (
	digestA   = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	digestC   = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	storeDown = "dial tcp 127.0.0.1:2379: connect: connection refused"
)

// testFleet is a fleet of three around the fixture's services: lb-a is this
// instance; lb-b agrees with it and drains web/c too; lb-c runs another
// configuration and has not applied the newest operator change.
func testFleet(now time.Time) *status.Fleet {
	return &status.Fleet{
		Name: "prod", Self: "lb-a", Connected: true, Revision: 45, OperatorRevision: 42,
		LastSync: now.Add(-3 * time.Second), InvalidKeys: 2,
		Instances: []status.Instance{
			{ID: "lb-a", Admin: "http://127.0.0.1:9090", Version: "1.4.0", ConfigDigest: digestA, AppliedRevision: 45,
				Started: now.Add(-2 * time.Hour), LastSeen: now.Add(-time.Second), Self: true,
				Backends: []status.InstanceBackend{{Service: "web", Backend: "c", State: "draining", ActiveConnections: 1}}},
			{ID: "lb-b", Admin: "http://127.0.0.2:9090", Version: "1.4.0", ConfigDigest: digestA, AppliedRevision: 46,
				Started: now.Add(-2 * time.Hour), LastSeen: now.Add(-2 * time.Second),
				Backends: []status.InstanceBackend{
					{Service: "web", Backend: "a", State: "healthy", ActiveConnections: 2},
					{Service: "web", Backend: "c", State: "draining"},
				}},
			{ID: "lb-c", Admin: "https://lb-c.example:9090", Version: "1.3.9", ConfigDigest: digestC, AppliedRevision: 40,
				Started: now.Add(-5 * time.Minute), LastSeen: now.Add(-2 * time.Second),
				Backends: []status.InstanceBackend{
					{Service: "web", Backend: "a", State: "healthy", ActiveConnections: 1},
					{Service: "web", Backend: "c", State: "healthy", ActiveConnections: 4},
				}},
		},
	}
}

// newFleetFixture is newFixture with the fake in testFleet.
func newFleetFixture(t testing.TB, token string) *fixture {
	t.Helper()
	f := newFixture(t, token)
	f.ctrl.SetFleet(testFleet(f.clock.Now()))
	return f
}

// disconnect makes the fake's fleet store unreachable since ago before now.
func (f *fixture) disconnect(t testing.TB, ago time.Duration) {
	t.Helper()
	since := f.clock.Now().Add(-ago)
	err := f.ctrl.UpdateFleet(func(fl *status.Fleet) {
		fl.Connected, fl.DisconnectedSince, fl.LastError = false, &since, storeDown
	})
	if err != nil {
		t.Fatal(err)
	}
}

// withController replaces f's server by one on ctrl.
func (f *fixture) withController(t testing.TB, ctrl Controller) {
	t.Helper()
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: ctrl, Now: f.clock.Now, Log: f.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
}

// plainController hides the fake's FleetController methods.
type plainController struct{ Controller }

func TestFleetAPI(t *testing.T) {
	f := newFleetFixture(t, "")
	rec := f.request("GET", "/api/v1/fleet", "")
	fl := wantJSON[status.Fleet](t, rec, http.StatusOK)
	if fl.Name != "prod" || !fl.Connected || fl.Revision != 45 || fl.OperatorRevision != 42 || len(fl.Instances) != 3 ||
		!fl.Instances[0].Self || fl.Instances[2].AppliedRevision != 40 {
		t.Fatalf("fleet = %+v", fl)
	}
	// SPEC §6's keys.
	raw := wantJSON[map[string]any](t, rec, http.StatusOK)
	for _, key := range []string{"name", "connected", "revision", "instances"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("fleet object lacks %q: %s", key, rec.Body)
		}
	}
	in := raw["instances"].([]any)[1].(map[string]any)
	for _, key := range []string{"id", "admin", "version", "config_digest", "applied_revision", "started", "last_seen", "self", "backends"} {
		if _, ok := in[key]; !ok {
			t.Errorf("instance object lacks %q", key)
		}
	}
	ib := in["backends"].([]any)[0].(map[string]any)
	for _, key := range []string{"service", "backend", "state", "active_connections"} {
		if _, ok := ib[key]; !ok {
			t.Errorf("instance backend object lacks %q", key)
		}
	}

	// Backends carry the fleet's view of them.
	b := wantJSON[status.Backend](t, f.request("GET", "/api/v1/services/web/backends/c", ""), http.StatusOK)
	if b.Fleet == nil || *b.Fleet != (status.BackendFleet{Instances: 3, Draining: 2, ActiveConnections: 5}) || b.Diverged == nil || *b.Diverged {
		t.Fatalf("web/c fleet = %+v diverged %v", b.Fleet, b.Diverged)
	}

	// Lists are arrays, never null.
	if err := f.ctrl.UpdateFleet(func(fl *status.Fleet) { fl.Instances[1].Backends = nil }); err != nil {
		t.Fatal(err)
	}
	body := f.request("GET", "/api/v1/fleet", "").Body.String()
	if strings.Contains(body, `"backends":null`) || !strings.Contains(body, `"backends":[]`) {
		t.Fatalf("nil backends not an empty array: %s", body)
	}
	f.ctrl.SetFleet(&status.Fleet{Name: "alone", Connected: true})
	raw = wantJSON[map[string]any](t, f.request("GET", "/api/v1/fleet", ""), http.StatusOK)
	if list, ok := raw["instances"].([]any); !ok || len(list) != 0 {
		t.Fatalf("instances = %v, want []", raw["instances"])
	}
}

func TestFleetAPIOutsideAFleet(t *testing.T) {
	f := newFixture(t, "") // a FleetController whose Fleet says ok=false
	msg := wantError(t, f.request("GET", "/api/v1/fleet", ""), http.StatusNotFound)
	if !strings.HasPrefix(msg, "not part of a fleet: ") {
		t.Fatalf("error = %q", msg)
	}
	b := wantJSON[map[string]any](t, f.request("GET", "/api/v1/services/web/backends/c", ""), http.StatusOK)
	if _, ok := b["fleet"]; ok {
		t.Fatalf("backend has fleet outside a fleet: %v", b)
	}
	if _, ok := b["diverged"]; ok {
		t.Fatalf("backend has diverged outside a fleet: %v", b)
	}

	f.withController(t, plainController{f.ctrl}) // no FleetController at all
	msg = wantError(t, f.request("GET", "/api/v1/fleet", ""), http.StatusNotFound)
	if !strings.HasPrefix(msg, "not part of a fleet: ") {
		t.Fatalf("error = %q", msg)
	}
}

func TestFleetAPINeedsToken(t *testing.T) {
	f := newFleetFixture(t, testToken)
	wantError(t, f.request("GET", "/api/v1/fleet", ""), http.StatusUnauthorized)
	wantJSON[status.Fleet](t, f.request("GET", "/api/v1/fleet", "", "Authorization: Bearer "+testToken), http.StatusOK)
}

// While the fleet store is unreachable, fleet-wide changes answer 503 with
// the controller's message and change nothing; reads go on.
func TestFleetUnavailable(t *testing.T) {
	f := newFleetFixture(t, "")
	f.disconnect(t, 72*time.Second)
	form := "Content-Type: application/x-www-form-urlencoded"
	for _, tc := range []struct{ method, path, body, header string }{
		{"POST", "/api/v1/services/web/backends/a/drain", "", ""},
		{"POST", "/api/v1/services/web/backends/c/undrain", "", ""},
		{"PUT", "/api/v1/services/web/backends/a/weight", `{"weight": 5}`, ""},
		{"POST", "/api/v1/services/web/backends/a/drain?scope=fleet", "", ""},
		{"POST", "/ui/services/web/backends/a/drain", "", ""},
		{"POST", "/ui/services/web/backends/c/undrain", "", ""},
		{"POST", "/ui/services/web/backends/a/weight", "weight=5", form},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			msg := wantError(t, f.request(tc.method, tc.path, tc.body, headers...), http.StatusServiceUnavailable)
			if msg != "fleet store unreachable: "+storeDown {
				t.Fatalf("error = %q", msg)
			}
		})
	}
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("calls = %+v, want none while the store is unreachable", calls)
	}
	if b, _ := f.ctrl.Backend("web", "a"); b.State != "healthy" || b.Weight != 2 {
		t.Fatalf("web/a = %s weight %d after refused changes", b.State, b.Weight)
	}
	// Reads answer from local state.
	fl := wantJSON[status.Fleet](t, f.request("GET", "/api/v1/fleet", ""), http.StatusOK)
	if fl.Connected || fl.LastError != storeDown || len(fl.Instances) != 3 {
		t.Fatalf("fleet = %+v", fl)
	}
	wantJSON[[]status.Service](t, f.request("GET", "/api/v1/services", ""), http.StatusOK)
	if rec := f.request("GET", "/healthz", ""); rec.Code != http.StatusOK {
		t.Fatalf("healthz = %d", rec.Code)
	}

	// scope=local works meanwhile, and marks the backend diverged.
	b := wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/a/drain?scope=local", ""), http.StatusOK)
	if b.State != "draining" || b.Diverged == nil || !*b.Diverged {
		t.Fatalf("after a local drain: state %q diverged %v", b.State, b.Diverged)
	}
	if !strings.Contains(f.logs.String(), `"scope":"local"`) {
		t.Fatalf("the action log lacks the scope:\n%s", f.logs)
	}
	if !strings.Contains(f.logs.String(), `"error":"fleet store unreachable: `+storeDown+`","by":"dashboard 192.0.2.7:40000 (none)","token":"none","remote":"192.0.2.7:40000","action":"set weight"`) {
		t.Fatalf("the refused changes are not logged:\n%s", f.logs)
	}
}

// Any error wrapping status.ErrUnavailable is a 503 with its message.
func TestUnavailableIs503(t *testing.T) {
	f := newFixture(t, "")
	f.withController(t, unknownOutcomeController{f.ctrl})
	msg := wantError(t, f.request("POST", "/api/v1/services/web/backends/a/drain", ""), http.StatusServiceUnavailable)
	if msg != "fleet store unreachable: the write was sent but not confirmed within 2s; its outcome is unknown: unavailable" {
		t.Fatalf("error = %q", msg)
	}
}

type unknownOutcomeController struct{ *admintest.Controller }

func (unknownOutcomeController) Drain(svc, backend, by string) (status.Backend, error) {
	return status.Backend{}, fmt.Errorf("fleet store unreachable: the write was sent but not confirmed within 2s; its outcome is unknown: %w", status.ErrUnavailable)
}

func TestScopeRouting(t *testing.T) {
	form := "Content-Type: application/x-www-form-urlencoded"
	type step struct{ method, path, body, want string }
	steps := []step{
		{"POST", "/api/v1/services/web/backends/a/drain", "", "Drain"},
		{"POST", "/api/v1/services/web/backends/a/drain?scope=fleet", "", "Drain"},
		{"POST", "/api/v1/services/web/backends/a/drain?scope=local", "", "DrainLocal"},
		{"POST", "/api/v1/services/web/backends/a/undrain?scope=local", "", "UndrainLocal"},
		{"POST", "/api/v1/services/web/backends/a/undrain?scope=", "", "Undrain"},
		{"PUT", "/api/v1/services/web/backends/a/weight?scope=local", `{"weight": 7}`, "SetWeightLocal"},
		{"PUT", "/api/v1/services/web/backends/a/weight?scope=fleet", `{"weight": 8}`, "SetWeight"},
		{"POST", "/ui/services/web/backends/a/drain?scope=local", "", "DrainLocal"},
		{"POST", "/ui/services/web/backends/a/undrain?scope=local", "", "UndrainLocal"},
		{"POST", "/ui/services/web/backends/a/weight?scope=local", "weight=9", "SetWeightLocal"},
		{"POST", "/ui/services/web/backends/a/drain", "", "Drain"},
	}
	run := func(t *testing.T, f *fixture, local bool) {
		for _, st := range steps {
			before := len(f.ctrl.Calls())
			rec := f.request(st.method, st.path, st.body, form)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s %s = %d %s", st.method, st.path, rec.Code, rec.Body)
			}
			calls := f.ctrl.Calls()
			want := st.want
			if !local {
				want = strings.TrimSuffix(want, "Local") // outside a fleet every change is local
			}
			if len(calls) != before+1 || calls[before].Method != want {
				t.Fatalf("%s %s: calls %+v, want %s", st.method, st.path, calls[before:], want)
			}
		}
	}
	t.Run("fleet", func(t *testing.T) {
		f := newFleetFixture(t, "")
		run(t, f, true)
		// The dashboard says a local change is local.
		rec := f.request("POST", "/ui/services/web/backends/a/undrain?scope=local", "")
		if !strings.Contains(rec.Header().Get("HX-Trigger"), "web/a undrained on this instance only") {
			t.Fatalf("HX-Trigger = %q", rec.Header().Get("HX-Trigger"))
		}
		logs := f.logs.String()
		if !strings.Contains(logs, `"action":"drain","service":"web","backend":"a","scope":"local"`) ||
			!strings.Contains(logs, `"action":"drain","service":"web","backend":"a","scope":"fleet"`) ||
			!strings.Contains(logs, `"weight":7,"scope":"local"`) {
			t.Fatalf("the action log lacks the scopes:\n%s", logs)
		}
	})
	t.Run("outside a fleet", func(t *testing.T) { run(t, newFixture(t, ""), false) })
	t.Run("no FleetController", func(t *testing.T) {
		f := newFixture(t, "")
		f.withController(t, plainController{f.ctrl})
		run(t, f, false)
	})
}

func TestBadScope(t *testing.T) {
	f := newFleetFixture(t, "")
	form := "Content-Type: application/x-www-form-urlencoded"
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/v1/services/web/backends/a/drain?scope=everywhere", ""},
		{"POST", "/api/v1/services/web/backends/a/undrain?scope=LOCAL", ""},
		{"PUT", "/api/v1/services/web/backends/a/weight?scope=global", `{"weight": 3}`},
		{"POST", "/ui/services/web/backends/a/drain?scope=x", ""},
		{"POST", "/ui/services/web/backends/a/weight?scope=x", "weight=3"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			msg := wantError(t, f.request(tc.method, tc.path, tc.body, form), http.StatusBadRequest)
			if !strings.Contains(msg, "scope") || !strings.Contains(msg, `"scope=fleet"`) || !strings.Contains(msg, `"scope=local"`) {
				t.Fatalf("error = %q, want it to name the parameter and its values", msg)
			}
		})
	}
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("calls = %+v after bad scopes", calls)
	}
	// Outside a fleet too: the parameter is checked the same way.
	f = newFixture(t, "")
	wantError(t, f.request("POST", "/api/v1/services/web/backends/a/drain?scope=all", ""), http.StatusBadRequest)
}

func TestFleetMetrics(t *testing.T) {
	f := newFleetFixture(t, "")
	values, types := gather(t, f)
	sync := float64(f.clock.Now().Add(-3*time.Second).UnixNano()) / 1e9
	for name, want := range map[string]float64{
		"balance_fleet_connected{}":                   1,
		"balance_fleet_instances{}":                   3,
		"balance_fleet_applied_revision{}":            45,
		"balance_fleet_last_sync_timestamp_seconds{}": sync,
		"balance_fleet_invalid_keys_total{}":          2,
	} {
		if got, ok := values[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if types["balance_fleet_invalid_keys_total"].String() != "COUNTER" || types["balance_fleet_connected"].String() != "GAUGE" {
		t.Errorf("types = %v", types)
	}

	f.disconnect(t, time.Minute)
	if err := f.ctrl.UpdateFleet(func(fl *status.Fleet) { fl.LastSync = time.Time{} }); err != nil {
		t.Fatal(err)
	}
	values, _ = gather(t, f)
	if values["balance_fleet_connected{}"] != 0 || values["balance_fleet_last_sync_timestamp_seconds{}"] != 0 {
		t.Errorf("disconnected, never synced: connected %v, last sync %v", values["balance_fleet_connected{}"],
			values["balance_fleet_last_sync_timestamp_seconds{}"])
	}

	// In the text format, with help.
	body := f.request("GET", "/metrics", "").Body.String()
	for _, want := range []string{"# HELP balance_fleet_connected ", "# TYPE balance_fleet_invalid_keys_total counter", "balance_fleet_instances 3"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Outside a fleet the series are absent.
	for _, f := range []*fixture{newFixture(t, ""), func() *fixture {
		f := newFixture(t, "")
		f.withController(t, plainController{f.ctrl})
		return f
	}()} {
		values, _ := gather(t, f)
		for name := range values {
			if strings.HasPrefix(name, "balance_fleet_") {
				t.Errorf("%s outside a fleet", name)
			}
		}
		if _, ok := values["balance_active_connections{backend=a,service=web}"]; !ok {
			t.Error("the other series are gone")
		}
	}
}
