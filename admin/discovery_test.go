package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// TestDiscoveryShown: a service's discovery sources reach the metrics and
// the dashboard, with a failing source's last error.
func TestDiscoveryShown(t *testing.T) {
	f := newFixture(t, "")
	good := f.clock.Now().Add(-3 * time.Second)
	failed := f.clock.Now().Add(-time.Second)
	err := f.ctrl.UpdateService("web", func(s *status.Service) {
		s.Discovery = []status.Discovery{
			{Type: "dns", Name: "_pg._tcp.db.internal", Backends: 3, Errors: 4, LastError: "127.0.0.1:53: SERVFAIL for _pg._tcp.db.internal. SRV",
				LastErrorTime: &failed, LastSuccess: &good},
			{Type: "etcd", Backends: 1, LastSuccess: &good},
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	values, _ := gather(t, f)
	if values["balance_discovery_errors_total{service=web,type=dns}"] != 4 || values["balance_discovery_errors_total{service=web,type=etcd}"] != 0 {
		t.Fatalf("discovery metrics: %v", values)
	}
	page := f.request("GET", "/", "").Body.String()
	for _, want := range []string{
		"discovered from <code>dns _pg._tcp.db.internal</code>: 3 backends",
		"4 failed lookups",
		"failing, keeping the last good set: 127.0.0.1:53: SERVFAIL",
		"discovered from <code>etcd members</code>: 1 backend · last good answer 3s ago",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}
