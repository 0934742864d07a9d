package admintest

import (
	"math/rand/v2"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// Demo returns a controller with three services in the situations an operator
// meets: healthy backends under load, one draining, one down with its check
// error, one with an open circuit, one half-open, one weighted to zero by the
// operator, a backup. Simulate then moves traffic through it.
func Demo(now func() time.Time) *Controller {
	c := New(now)
	t := c.now()
	ok := func(ms float64) *status.Check {
		return &status.Check{Time: t.Add(-4 * time.Second), OK: true, DurationMS: ms}
	}
	fail := func(ms float64, err string) *status.Check {
		return &status.Check{Time: t.Add(-2 * time.Second), OK: false, DurationMS: ms, Error: err}
	}
	ago := func(d time.Duration) time.Time { return t.Add(-d) }
	must(c.AddService(status.Service{
		Name: "postgres", Listen: "127.0.0.1:6432", Algorithm: "least_connections",
		Backends: []status.Backend{
			{Name: "pg1", Address: "10.0.0.11:5432", Weight: 3, LastCheck: ok(1.8), LastChange: ago(26 * time.Hour),
				ActiveConnections: 14, TotalConnections: 182_311, BytesIn: 9 << 30, BytesOut: 71 << 30, ChecksSuccess: 9_310},
			{Name: "pg2", Address: "10.0.0.12:5432", Weight: 3, LastCheck: fail(3000, "dial tcp 10.0.0.12:5432: i/o timeout"),
				ConsecutiveFailures: 1, LastChange: ago(26 * time.Hour), ActiveConnections: 11,
				TotalConnections: 179_024, FailedConnections: 12, BytesIn: 8 << 30, BytesOut: 66 << 30, ChecksSuccess: 9_301, ChecksFailure: 9},
			{Name: "pg3", Address: "10.0.0.13:5432", Weight: 3, State: "draining", LastCheck: ok(2.1), LastChange: ago(7 * time.Minute),
				ActiveConnections: 3, TotalConnections: 95_480, BytesIn: 4 << 30, BytesOut: 30 << 30, ChecksSuccess: 9_307,
				Events: []status.Event{{Time: ago(7 * time.Minute), From: "healthy", To: "draining", Reason: "by dashboard 10.1.2.3:51234"}}},
			{Name: "pg-standby", Address: "10.0.1.20:5432", Weight: 1, Backup: true, LastCheck: ok(2.4), LastChange: ago(26 * time.Hour), ChecksSuccess: 9_310},
		},
	}))
	must(c.AddService(status.Service{
		Name: "web", Listen: "0.0.0.0:8443", Algorithm: "round_robin",
		Backends: []status.Backend{
			{Name: "web-a", Address: "10.0.2.1:443", Weight: 2, LastCheck: ok(4.2), LastChange: ago(3 * time.Hour),
				ActiveConnections: 52, TotalConnections: 1_204_880, BytesIn: 3 << 30, BytesOut: 118 << 30, ChecksSuccess: 1_080},
			{Name: "web-b", Address: "10.0.2.2:443", Weight: 2, LastCheck: ok(3.9), LastChange: ago(3 * time.Hour),
				ActiveConnections: 47, TotalConnections: 1_198_112, BytesIn: 3 << 30, BytesOut: 115 << 30, ChecksSuccess: 1_080},
			{Name: "web-c", Address: "10.0.2.3:443", Weight: 2, Health: "unhealthy", ConsecutiveSuccesses: 1,
				LastCheck: fail(0.4, "dial tcp 10.0.2.3:443: connect: connection refused"), LastChange: ago(14 * time.Minute),
				TotalConnections: 801_554, FailedConnections: 431, ErrorRate: 0.62, BytesIn: 2 << 30, BytesOut: 80 << 30, ChecksSuccess: 1_002, ChecksFailure: 78,
				Events: []status.Event{
					{Time: ago(14 * time.Minute), From: "healthy", To: "unhealthy", Reason: "3 consecutive failed checks: connection refused"},
					{Time: ago(15 * time.Minute), From: "circuit closed", To: "circuit open", Reason: "5 consecutive connect failures"},
				}},
			{Name: "web-d", Address: "10.0.2.4:443", Weight: 2, Circuit: "open", LastCheck: ok(5.5), LastChange: ago(40 * time.Second),
				TotalConnections: 640_090, FailedConnections: 57, ErrorRate: 0.31, BytesIn: 1 << 30, BytesOut: 61 << 30, ChecksSuccess: 1_076, ChecksFailure: 4,
				Events: []status.Event{{Time: ago(40 * time.Second), From: "circuit closed", To: "circuit open", Reason: "5 consecutive connect failures"}}},
			{Name: "web-e", Address: "10.0.2.5:443", Weight: 0, ConfiguredWeight: 2, LastCheck: ok(4.0), LastChange: ago(2 * time.Hour),
				ActiveConnections: 1, TotalConnections: 12_007, BytesIn: 90 << 20, BytesOut: 2 << 30, ChecksSuccess: 1_080},
		},
	}))
	must(c.AddService(status.Service{
		Name: "redis", Listen: "127.0.0.1:6380", Algorithm: "source_hash",
		Backends: []status.Backend{
			{Name: "cache1", Address: "10.0.3.1:6379", Weight: 1, LastCheck: ok(0.3), LastChange: ago(9 * 24 * time.Hour),
				ActiveConnections: 120, TotalConnections: 48_112, BytesIn: 40 << 30, BytesOut: 52 << 30, ChecksSuccess: 77_000},
			{Name: "cache2", Address: "10.0.3.2:6379", Weight: 1, Circuit: "half_open", LastCheck: ok(0.4), LastChange: ago(5 * time.Second),
				ActiveConnections: 1, TotalConnections: 39_870, FailedConnections: 22, ErrorRate: 0.08, BytesIn: 31 << 30, BytesOut: 44 << 30, ChecksSuccess: 76_990, ChecksFailure: 10,
				Events: []status.Event{
					{Time: ago(5 * time.Second), From: "circuit open", To: "circuit half_open", Reason: "open for 60s"},
					{Time: ago(65 * time.Second), From: "circuit closed", To: "circuit open", Reason: "5 consecutive connect failures"},
				}},
			{Name: "cache3", Address: "10.0.3.3:6379", Weight: 1, Health: "unhealthy", ConsecutiveSuccesses: 1,
				LastCheck: ok(0.5), LastChange: ago(3 * time.Minute), TotalConnections: 41_002, FailedConnections: 3,
				BytesIn: 33 << 30, BytesOut: 47 << 30, ChecksSuccess: 76_950, ChecksFailure: 52,
				Events: []status.Event{{Time: ago(3 * time.Minute), From: "healthy", To: "unhealthy", Reason: "3 consecutive failed checks: -LOADING"}}},
		},
	}))
	for name, r := range map[string]status.Rejected{
		"postgres": {MaxConnections: 14},
		"web":      {NoBackend: 3, ConnectFailed: 27},
		"redis":    {ConnectFailed: 2},
	} {
		must(c.UpdateService(name, func(s *status.Service) {
			s.Rejected = r
			s.RejectedConnections = r.MaxConnections + r.NoBackend + r.ConnectFailed + r.ProxyHeader
			s.Retries = 9 * r.ConnectFailed
		}))
	}
	c.sumServices()
	return c
}

// Simulate moves one step of traffic, step long, through every backend: an
// eligible backend gains and loses connections and bytes around its weight, a
// backend that takes no new connection sheds them. rng makes it repeatable.
func (c *Controller) Simulate(rng *rand.Rand, step time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	secs := step.Seconds()
	for _, s := range c.services {
		// Backups take traffic only while no other backend is eligible.
		primary := false
		for _, b := range s.backends {
			primary = primary || (b.view.Eligible && !b.view.Backup)
		}
		for _, b := range s.backends {
			v := &b.view
			before := *v
			if v.LastCheck != nil {
				// Checks run every 10 s; the last one was a few seconds ago.
				v.LastCheck.Time = now.Add(-time.Duration(rng.IntN(10_000)) * time.Millisecond)
				if v.LastCheck.OK {
					v.ChecksSuccess++
				} else {
					v.ChecksFailure++
				}
			}
			switch {
			case v.Eligible && (!v.Backup || !primary):
				target := float64(v.Weight) * (10 + 30*rng.Float64())
				delta := int64((target - float64(v.ActiveConnections)) * 0.4)
				v.ActiveConnections = max(0, v.ActiveConnections+delta)
				opened := int64(float64(v.Weight) * secs * (2 + 4*rng.Float64()))
				v.TotalConnections += opened
				rate := float64(v.ActiveConnections) * (20_000 + 200_000*rng.Float64())
				v.BytesOut += int64(rate * secs)
				v.BytesIn += int64(rate * secs / 8)
			case v.ActiveConnections > 0:
				v.ActiveConnections -= max(1, v.ActiveConnections/3)
				v.BytesOut += v.ActiveConnections * int64(50_000*secs)
			}
			if v.Circuit == "open" || v.Health == "unhealthy" {
				// Clients that hash or retry onto it still try now and then.
				if rng.IntN(3) == 0 {
					v.FailedConnections++
					s.view.Retries++
				}
			}
			b.settle(before, "", now)
		}
		if rng.IntN(4) == 0 {
			s.view.Rejected.ConnectFailed++
			s.view.RejectedConnections++
		}
	}
	c.sumServices()
}

// sumServices sets each service's active and total connections from its
// backends.
func (c *Controller) sumServices() {
	for _, s := range c.services {
		var active, total int64
		for _, b := range s.backends {
			active += b.view.ActiveConnections
			total += b.view.TotalConnections
		}
		s.view.ActiveConnections = active
		s.view.TotalConnections = max(total, s.view.TotalConnections)
	}
}

func must(err error) {
	if err != nil {
		panic("admintest: " + err.Error())
	}
}
