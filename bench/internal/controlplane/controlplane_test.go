package controlplane

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/child"
	"github.com/balancel4/balance-l4/config"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	child.ExitIfChild()
	goleak.VerifyTestMain(m)
}

func TestConfigLoadsAtFullScale(t *testing.T) {
	var listens, echo []string
	for i := range 100 {
		listens = append(listens, fmt.Sprintf("127.0.0.1:%d", 20000+i))
		echo = append(echo, fmt.Sprintf("127.0.0.1:%d", 30000+i))
	}
	text := Config(Scale{Listens: listens, Backends: echo, PerSvc: 100, Admin: "127.0.0.1:19999", Checks: true, Interval: time.Second, Timeout: time.Second})
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("generated configuration does not load: %v", err)
	}
	n := 0
	for _, s := range cfg.Services {
		if !s.HealthCheck.Enabled || s.HealthCheck.Interval != time.Second || s.HealthCheck.Type != "tcp" {
			t.Fatalf("service %s checks = %+v, want tcp every 1s", s.Name, s.HealthCheck)
		}
		n += len(s.Backends)
	}
	if len(cfg.Services) != 100 || n != 10_000 || cfg.Admin.Listen != "127.0.0.1:19999" || cfg.Log.AccessLog {
		t.Fatalf("config has %d services, %d backends, admin %q, access log %v; want 100, 10000, the admin address, off",
			len(cfg.Services), n, cfg.Admin.Listen, cfg.Log.AccessLog)
	}
}

func backendView(name string, checked time.Time, health string, checks *int64) apiBackend {
	b := apiBackend{Name: name, Health: health, ChecksSuccess: checks, ChecksFailure: new(int64)}
	if !checked.IsZero() {
		b.LastCheck = &struct {
			Time time.Time `json:"time"`
			OK   bool      `json:"ok"`
		}{Time: checked, OK: true}
	}
	return b
}

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	n := func(v int64) *int64 { return &v }
	first := snapshot{sent: t0, services: []apiService{{Backends: []apiBackend{
		backendView("a", t0, "healthy", n(10)),
		backendView("b", t0, "healthy", n(10)),
		backendView("c", time.Time{}, "healthy", n(0)),
	}}}}
	at := t0.Add(2 * time.Second)
	second := snapshot{sent: at, services: []apiService{{Backends: []apiBackend{
		backendView("a", at.Add(-300*time.Millisecond), "healthy", n(12)),    // on time
		backendView("b", at.Add(-1500*time.Millisecond), "unhealthy", n(11)), // 500 ms late
		backendView("c", time.Time{}, "healthy", n(0)),                       // never checked
	}}}}
	r := HealthResult{Backends: 3, Interval: time.Second}
	judge(&r, first, second)
	if r.ChecksPerSecond != 1.5 {
		t.Errorf("ChecksPerSecond = %v, want 3 checks / 2 s = 1.5", r.ChecksPerSecond)
	}
	if r.LatenessMax != 500*time.Millisecond || r.LatenessP99 != 500*time.Millisecond {
		t.Errorf("lateness p99, max = %v, %v; want 500ms, 500ms", r.LatenessP99, r.LatenessMax)
	}
	if r.NeverChecked != 1 || r.Healthy != 2 {
		t.Errorf("NeverChecked, Healthy = %d, %d; want 1, 2", r.NeverChecked, r.Healthy)
	}
	if r.ExpectedChecksPerSecond() != 3 {
		t.Errorf("ExpectedChecksPerSecond = %v, want 3", r.ExpectedChecksPerSecond())
	}

	// Without the counters the rate stays unknown (0).
	for _, s := range []*snapshot{&first, &second} {
		for i := range s.services[0].Backends {
			s.services[0].Backends[i].ChecksSuccess = nil
		}
	}
	r = HealthResult{Backends: 3, Interval: time.Second}
	judge(&r, first, second)
	if r.ChecksPerSecond != 0 {
		t.Errorf("ChecksPerSecond without counters = %v, want 0", r.ChecksPerSecond)
	}
}

// TestAgainstBalanceL4 runs both figures at a small scale against a built
// balance-l4, named by L4BENCH_BALANCE_L4 (the benchmark command builds it; this
// package's tests do not compile the product).
func TestAgainstBalanceL4(t *testing.T) {
	bin := os.Getenv("L4BENCH_BALANCE_L4")
	if bin == "" {
		t.Skip("set L4BENCH_BALANCE_L4 to a balance-l4 binary to run this test")
	}
	o := Options{BalanceL4: bin, Dir: t.TempDir(), Spawn: child.TestSpawner()}
	h, err := HealthChecks(context.Background(), o, HealthLoad{Services: 2, PerSvc: 5, Interval: 200 * time.Millisecond, Warmup: 500 * time.Millisecond, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if h.Backends != 10 || h.Healthy != 10 || h.NeverChecked != 0 || h.CPUShare < 0 {
		t.Fatalf("HealthChecks = %+v, want 10 backends, all checked and healthy", h)
	}
	d, err := Dashboard(context.Background(), o, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if d.Backends != 10 || d.Bytes == 0 || d.Median <= 0 || d.Max < d.Median {
		t.Fatalf("Dashboard = %+v, want a page and ordered timings", d)
	}
}

// TestHealthChecksAtFullScale is the health-check figure alone, at BENCH.md's
// scale (10 000 backends every second), for work on the checks: the full
// benchmark command runs every data-path load first. It needs
// L4BENCH_BALANCE_L4 and L4BENCH_HEALTH_SCALE=1, and logs the figure.
func TestHealthChecksAtFullScale(t *testing.T) {
	bin := os.Getenv("L4BENCH_BALANCE_L4")
	if bin == "" || os.Getenv("L4BENCH_HEALTH_SCALE") != "1" {
		t.Skip("set L4BENCH_BALANCE_L4 to a balance-l4 binary and L4BENCH_HEALTH_SCALE=1 to run this test")
	}
	o := Options{BalanceL4: bin, Dir: t.TempDir(), Spawn: child.TestSpawner()}
	h, err := HealthChecks(context.Background(), o, HealthLoad{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d backends: CPU %.1f %% of a core, %.0f checks/s (want %.0f), lateness p99 %v max %v, never checked %d, healthy %d, RSS %d MiB",
		h.Backends, 100*h.CPUShare, h.ChecksPerSecond, h.ExpectedChecksPerSecond(), h.LatenessP99, h.LatenessMax,
		h.NeverChecked, h.Healthy, h.RSS>>20)
	if h.NeverChecked != 0 || h.Healthy != h.Backends {
		t.Fatalf("%d backends never checked, %d of %d healthy", h.NeverChecked, h.Healthy, h.Backends)
	}
}
