package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/status"
)

// addPending adds a service "new" with one backend added while running whose
// first check has not run yet, as the data path reports it.
func addPending(t *testing.T, f *fixture) {
	t.Helper()
	mustAdd(t, f.ctrl, status.Service{Name: "new", Listen: "127.0.0.1:7100", Algorithm: "round_robin",
		Backends: []status.Backend{{Name: "n1", Address: "10.0.9.1:80", Weight: 1, Health: "pending"}}})
}

// TestPendingInAPIAndMetrics: a pending backend is "pending" in the API's
// state and health, not eligible with its reason, and has the pending series
// of balance_backend_state (every backend has all four).
func TestPendingInAPIAndMetrics(t *testing.T) {
	f := newFixture(t, "")
	addPending(t, f)

	raw := wantJSON[map[string]any](t, f.request("GET", "/api/v1/services/new/backends/n1", ""), http.StatusOK)
	if raw["state"] != "pending" || raw["health"] != "pending" || raw["eligible"] != false ||
		raw["reason"] != "waiting for its first health check" || raw["last_check"] != nil {
		t.Fatalf("pending backend: %v", raw)
	}

	values, _ := gather(t, f)
	for state, want := range map[string]float64{"pending": 1, "healthy": 0, "unhealthy": 0, "draining": 0} {
		if got, ok := values["balance_backend_state{backend=n1,service=new,state="+state+"}"]; !ok || got != want {
			t.Errorf("n1 state=%s: %v (present %v), want %v", state, got, ok, want)
		}
	}
	if got, ok := values["balance_backend_state{backend=a,service=web,state=pending}"]; !ok || got != 0 {
		t.Errorf("a healthy backend's pending series: %v (present %v), want 0", got, ok)
	}
	body := f.request("GET", "/metrics", "").Body.String()
	if !strings.Contains(body, `balance_backend_state{backend="n1",service="new",state="pending"} 1`) {
		t.Error("the text format lacks the pending series")
	}
}
