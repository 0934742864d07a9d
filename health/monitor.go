package health

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for a Target's zero Interval and Timeout (SPEC §2).
const (
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 3 * time.Second
)

// jitter is the share of an interval by which each one is stretched or
// shrunk at random, so backends added together drift apart.
const jitter = 0.1

// Target is one backend to probe.
type Target struct {
	ID       string        // unique within the monitor, e.g. "svc/backend"
	Address  string        // host:port handed to the Checker
	Checker  Checker       // required
	Interval time.Duration // between check starts, ±10%; <= 0 means 10s
	Timeout  time.Duration // a check is cancelled after it; <= 0 means 3s
	Status   *Status       // required; results are recorded here
}

// MonitorStats counts what a Monitor did since it started.
type MonitorStats struct {
	Checks, Successes, Failures int64
	// Late counts checks that started more than a tenth of their interval
	// after they were due: the scheduler fell behind, or the previous check
	// ran past the interval (a Timeout longer than the Interval). A check is
	// due an interval ±10% after the previous one was due.
	Late        int64
	MaxLateness time.Duration
}

// Monitor runs active checks: one goroutine per target, sleeping on a timer
// between checks, so checks of one target never overlap and a slow target
// delays no other. The first check runs at once.
type Monitor struct {
	log zerolog.Logger

	mu      sync.Mutex
	probers map[string]*prober
	closed  bool
	wg      sync.WaitGroup

	checks, successes, failures, late atomic.Int64
	maxLateness                       atomic.Int64 // time.Duration
}

// NewMonitor returns a Monitor with no targets. Each result is logged at
// debug; state changes are for the Status's listeners to log.
func NewMonitor(log zerolog.Logger) *Monitor {
	return &Monitor{log: log, probers: make(map[string]*prober)}
}

type prober struct {
	t      Target
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
}

// Add starts probing t, with its first check at once. A target with the same
// ID is replaced: its prober is stopped, and the new one starts checking only
// once the old one's check in flight (if any) has ended. After Close, Add does
// nothing. It panics on a target without ID, Checker or Status: that is a
// programming error, not a runtime condition.
func (m *Monitor) Add(t Target) {
	switch {
	case t.ID == "":
		panic("health: Monitor.Add: target without ID")
	case t.Checker == nil:
		panic(fmt.Sprintf("health: Monitor.Add: target %q without Checker", t.ID))
	case t.Status == nil:
		panic(fmt.Sprintf("health: Monitor.Add: target %q without Status", t.ID))
	}
	if t.Interval <= 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{t: t, cancel: cancel, done: make(chan struct{})}
	old := m.probers[t.ID]
	if old != nil {
		old.cancel()
	}
	m.probers[t.ID] = p
	m.wg.Add(1)
	go m.run(ctx, p, old)
}

// Remove stops probing id and waits for its check in flight, if any, to end
// (it is cancelled, and its result is not recorded). Unknown IDs are ignored.
func (m *Monitor) Remove(id string) {
	m.mu.Lock()
	p := m.probers[id]
	delete(m.probers, id)
	m.mu.Unlock()
	if p != nil {
		p.cancel()
		<-p.done
	}
}

// Close stops every prober and waits for them. It is safe to call twice.
func (m *Monitor) Close() {
	m.mu.Lock()
	m.closed = true
	probers := m.probers
	m.probers = map[string]*prober{}
	m.mu.Unlock()
	for _, p := range probers {
		p.cancel()
	}
	m.wg.Wait()
}

// Stats returns the counters.
func (m *Monitor) Stats() MonitorStats {
	return MonitorStats{
		Checks:      m.checks.Load(),
		Successes:   m.successes.Load(),
		Failures:    m.failures.Load(),
		Late:        m.late.Load(),
		MaxLateness: time.Duration(m.maxLateness.Load()),
	}
}

// run probes one target until ctx is cancelled, after waiting for the
// prober it replaces.
func (m *Monitor) run(ctx context.Context, p *prober, prev *prober) {
	defer m.wg.Done()
	defer close(p.done)
	if prev != nil {
		<-prev.done // cancelled already, so this ends with its check in flight
	}
	due := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		m.noteLateness(start.Sub(due), p.t.Interval)
		m.check(ctx, p.t, start)
		if ctx.Err() != nil {
			return
		}
		// The schedule keeps its own rhythm, so lateness does not drift in;
		// a check that ran a whole interval past it starts the next at once
		// (late) and the schedule restarts from it.
		if due = due.Add(jittered(p.t.Interval)); due.Before(start) {
			due = start.Add(jittered(p.t.Interval))
		}
		timer.Reset(time.Until(due))
	}
}

// check runs one check and records its result, unless the prober was
// stopped meanwhile (a cancelled check says nothing about the backend).
func (m *Monitor) check(ctx context.Context, t Target, start time.Time) {
	cctx, cancel := context.WithTimeout(ctx, t.Timeout)
	err := t.Checker.Check(cctx, t.Address)
	cancel()
	if ctx.Err() != nil {
		return
	}
	r := Result{Time: start, OK: err == nil, Duration: time.Since(start)}
	m.checks.Add(1)
	if err != nil {
		r.Err = err.Error()
		m.failures.Add(1)
	} else {
		m.successes.Add(1)
	}
	t.Status.RecordCheck(r)
	m.log.Debug().Str("target", t.ID).Str("address", t.Address).Bool("ok", r.OK).
		Dur("duration", r.Duration).Str("error", r.Err).Msg("health check")
}

func (m *Monitor) noteLateness(late, interval time.Duration) {
	if late > interval/10 {
		m.late.Add(1)
	}
	for {
		max := m.maxLateness.Load()
		if int64(late) <= max || m.maxLateness.CompareAndSwap(max, int64(late)) {
			return
		}
	}
}

// jittered returns d stretched or shrunk by up to ±10% at random.
func jittered(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*2-1)*jitter*float64(d))
}
