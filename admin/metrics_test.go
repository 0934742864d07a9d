package admin

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/balancel4/balance-l4/status"
)

// gathered maps "name{label=value,...}" (labels sorted) to value, and name to type.
func gather(t *testing.T, f *fixture) (map[string]float64, map[string]dto.MetricType) {
	t.Helper()
	families, err := f.srv.metrics.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	values := make(map[string]float64)
	types := make(map[string]dto.MetricType)
	for _, fam := range families {
		types[fam.GetName()] = fam.GetType()
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := fam.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				values[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				values[key] = m.GetGauge().GetValue()
			}
		}
	}
	return values, types
}

func TestMetricsFollowTheController(t *testing.T) {
	f := newFixture(t, "")
	err := f.ctrl.Update("web", "a", "", func(b *status.Backend) {
		b.TotalConnections = 42
		b.ActiveConnections = 5
		b.FailedConnections = 2
		b.BytesIn = 1000
		b.BytesOut = 9000
		b.ChecksSuccess = 7
		b.ChecksFailure = 1
		b.Circuit = "half_open"
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ctrl.Update("web", "b", "", func(b *status.Backend) { b.Circuit = "open" }); err != nil {
		t.Fatal(err)
	}
	err = f.ctrl.UpdateService("web", func(s *status.Service) {
		s.ActiveConnections = 6
		s.TotalConnections = 50
		s.Retries = 4
		s.AcceptErrors = 9
		s.Rejected = status.Rejected{MaxConnections: 1, NoBackend: 2, ConnectFailed: 3, ProxyHeader: 4}
	})
	if err != nil {
		t.Fatal(err)
	}
	values, types := gather(t, f)
	want := map[string]float64{
		"balance_connections_total{backend=a,service=web}":                       42,
		"balance_active_connections{backend=a,service=web}":                      5,
		"balance_connect_failures_total{backend=a,service=web}":                  2,
		"balance_bytes_total{backend=a,direction=in,service=web}":                1000,
		"balance_bytes_total{backend=a,direction=out,service=web}":               9000,
		"balance_backend_eligible{backend=a,service=web}":                        1,
		"balance_backend_eligible{backend=b,service=web}":                        0,
		"balance_backend_eligible{backend=c,service=web}":                        0,
		"balance_backend_state{backend=a,service=web,state=healthy}":             1,
		"balance_backend_state{backend=a,service=web,state=unhealthy}":           0,
		"balance_backend_state{backend=a,service=web,state=draining}":            0,
		"balance_backend_state{backend=b,service=web,state=unhealthy}":           1,
		"balance_backend_state{backend=b,service=web,state=healthy}":             0,
		"balance_backend_state{backend=c,service=web,state=draining}":            1,
		"balance_backend_state{backend=c,service=web,state=healthy}":             0,
		"balance_health_checks_total{backend=a,result=success,service=web}":      7,
		"balance_health_checks_total{backend=a,result=failure,service=web}":      1,
		"balance_circuit_breaker_state{backend=a,service=web}":                   1,
		"balance_circuit_breaker_state{backend=b,service=web}":                   2,
		"balance_circuit_breaker_state{backend=c,service=web}":                   0,
		"balance_backend_weight{backend=a,service=web}":                          2,
		"balance_retries_total{service=web}":                                     4,
		"balance_accept_errors_total{service=web}":                               9,
		"balance_rejected_connections_total{reason=max_connections,service=web}": 1,
		"balance_rejected_connections_total{reason=no_backend,service=web}":      2,
		"balance_rejected_connections_total{reason=connect_failed,service=web}":  3,
		"balance_rejected_connections_total{reason=proxy_header,service=web}":    4,
		"balance_service_active_connections{service=web}":                        6,
		"balance_service_connections_total{service=web}":                         50,
		"balance_connections_total{backend=pg1,service=db}":                      0,
		"balance_rejected_connections_total{reason=no_backend,service=db}":       0,
	}
	for k, v := range want {
		got, ok := values[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	counters := []string{"balance_connections_total", "balance_connect_failures_total", "balance_bytes_total",
		"balance_health_checks_total", "balance_retries_total", "balance_accept_errors_total", "balance_rejected_connections_total",
		"balance_service_connections_total"}
	gauges := []string{"balance_active_connections", "balance_backend_eligible", "balance_backend_state",
		"balance_circuit_breaker_state", "balance_service_active_connections", "balance_backend_weight"}
	for _, n := range counters {
		if types[n] != dto.MetricType_COUNTER {
			t.Errorf("%s is %v, want a counter", n, types[n])
		}
	}
	for _, n := range gauges {
		if types[n] != dto.MetricType_GAUGE {
			t.Errorf("%s is %v, want a gauge", n, types[n])
		}
	}
	for _, n := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := types[n]; !ok {
			t.Errorf("missing %s", n)
		}
	}

	// Values follow the controller at the next scrape.
	if err := f.ctrl.Update("web", "a", "", func(b *status.Backend) { b.TotalConnections = 43 }); err != nil {
		t.Fatal(err)
	}
	values, _ = gather(t, f)
	if got := values["balance_connections_total{backend=a,service=web}"]; got != 43 {
		t.Fatalf("after one more connection: %v, want 43", got)
	}
	// A removed backend disappears from the scrape.
	if err := f.ctrl.RemoveBackend("web", "c"); err != nil {
		t.Fatal(err)
	}
	values, _ = gather(t, f)
	if _, ok := values["balance_backend_eligible{backend=c,service=web}"]; ok {
		t.Fatal("removed backend still exported")
	}
}

func TestMetricsEndpointText(t *testing.T) {
	f := newFixture(t, "")
	rec := f.request("GET", "/metrics", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q, want the text format", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`# TYPE balance_connections_total counter`,
		`balance_active_connections{backend="a",service="web"} 3`,
		`balance_backend_state{backend="c",service="web",state="draining"} 1`,
		`balance_bytes_total{backend="a",direction="in",service="web"} 0`,
		`# TYPE balance_circuit_breaker_state gauge`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
