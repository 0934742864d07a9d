package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/procstat"
)

// HealthLoad is the health-check scale figure's shape; zero fields take BENCH.md's
// values: 100 services × 100 backends, checked every second, CPU over 10 s.
type HealthLoad struct {
	Services int           // 0 = 100
	PerSvc   int           // 0 = 100
	Interval time.Duration // 0 = 1 s
	Warmup   time.Duration // before measuring; 0 = 3 s
	Window   time.Duration // CPU measured over this; 0 = 10 s
}

func (l HealthLoad) withDefaults() HealthLoad {
	if l.Services == 0 {
		l.Services = 100
	}
	if l.PerSvc == 0 {
		l.PerSvc = 100
	}
	if l.Interval == 0 {
		l.Interval = time.Second
	}
	if l.Warmup == 0 {
		l.Warmup = 3 * time.Second
	}
	if l.Window == 0 {
		l.Window = 10 * time.Second
	}
	return l
}

// HealthResult is what checking many backends costs.
type HealthResult struct {
	Backends int
	Interval time.Duration
	Window   time.Duration
	CPUShare float64 // CPU time over wall time in the window; 1 = one core
	RSS      int64   // resident memory at the end of the window, bytes

	// From two snapshots of the admin API taken after the window (so that reading
	// them does not count in CPUShare).
	ChecksPerSecond float64       // counted by the API; 0 when it has no counters
	LatenessP99     time.Duration // how far the last check is older than the interval, over backends
	LatenessMax     time.Duration
	NeverChecked    int           // backends with no last_check at all
	Healthy         int           // backends whose checks say healthy
	APITime         time.Duration // GET /api/v1/services with every backend, slower of the two
}

// ExpectedChecksPerSecond is the rate the configuration asks for.
func (r HealthResult) ExpectedChecksPerSecond() float64 {
	return float64(r.Backends) / r.Interval.Seconds()
}

// snapshotGap separates the two API snapshots.
const snapshotGap = 2 * time.Second

// HealthChecks runs balance-l4 with l's backends, all checked (tcp) every
// interval against local echo servers, and measures its CPU share over a window,
// then the check rate and lateness from the admin API.
func HealthChecks(ctx context.Context, o Options, l HealthLoad) (HealthResult, error) {
	l = l.withDefaults()
	r := HealthResult{Backends: l.Services * l.PerSvc, Interval: l.Interval, Window: l.Window}
	o.log("control plane: starting balance-l4 with %d backends checked every %v", r.Backends, l.Interval)
	inst, err := start(ctx, o, "health-scale", l.Services, l.PerSvc, true, l.Interval)
	if err != nil {
		return r, err
	}
	defer inst.stop()

	if err := sleep(ctx, l.Warmup); err != nil {
		return r, err
	}
	pid := inst.proc.PID()
	before, err := procstat.Read(pid)
	if err != nil {
		return r, fmt.Errorf("measuring health checks: %w", err)
	}
	t0 := time.Now()
	if err := sleep(ctx, l.Window); err != nil {
		return r, err
	}
	after, err := procstat.Read(pid)
	if err != nil {
		return r, fmt.Errorf("measuring health checks: %w", err)
	}
	r.CPUShare = (after.CPU - before.CPU).Seconds() / time.Since(t0).Seconds()
	r.RSS = after.RSS

	first, err := inst.services(ctx)
	if err != nil {
		return r, fmt.Errorf("measuring check lateness: %w", err)
	}
	if err := sleep(ctx, snapshotGap); err != nil {
		return r, err
	}
	second, err := inst.services(ctx)
	if err != nil {
		return r, fmt.Errorf("measuring check lateness: %w", err)
	}
	if err := inst.proc.Alive(); err != nil {
		return r, err
	}
	r.APITime = max(first.took, second.took)
	judge(&r, first, second)
	o.log("control plane: %d backends: CPU %.0f %% of a core, %.0f checks/s, lateness p99 %v max %v",
		r.Backends, 100*r.CPUShare, r.ChecksPerSecond, r.LatenessP99, r.LatenessMax)
	return r, inst.stop()
}

// judge fills in the check rate and lateness from two snapshots.
func judge(r *HealthResult, first, second snapshot) {
	var late []time.Duration
	var counted bool
	var checks0, checks1 int64
	count := func(b apiBackend) (int64, bool) {
		if b.ChecksSuccess == nil || b.ChecksFailure == nil {
			return 0, false
		}
		return *b.ChecksSuccess + *b.ChecksFailure, true
	}
	for _, s := range first.services {
		for _, b := range s.Backends {
			n, ok := count(b)
			checks0 += n
			counted = ok
		}
	}
	for _, s := range second.services {
		for _, b := range s.Backends {
			n, _ := count(b)
			checks1 += n
			if b.Health == "healthy" {
				r.Healthy++
			}
			if b.LastCheck == nil || b.LastCheck.Time.IsZero() {
				r.NeverChecked++
				continue
			}
			// The snapshot is taken at or after sent, so this is a lower bound
			// of the lateness, short by at most the API's response time.
			late = append(late, max(second.sent.Sub(b.LastCheck.Time)-r.Interval, 0))
		}
	}
	if counted {
		r.ChecksPerSecond = float64(checks1-checks0) / second.sent.Sub(first.sent).Seconds()
	}
	if len(late) > 0 {
		slices.Sort(late)
		r.LatenessP99 = late[(len(late)*99+99)/100-1]
		r.LatenessMax = late[len(late)-1]
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errors.Join(fmt.Errorf("waiting %v", d), ctx.Err())
	}
}
