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

// Monitor runs active checks. Each target has a timer (time.AfterFunc) and
// no goroutine between checks: a check runs in the goroutine its timer
// starts, and re-arms the timer when it ends, so checks of one target never
// overlap, a slow target delays no other, and 10 000 idle targets cost 10 000
// timers, not 10 000 stacks. The first check runs at once; the next ones
// come due on ticks shared by many targets (see nextDue).
type Monitor struct {
	log zerolog.Logger

	mu      sync.Mutex
	probers map[string]*prober
	closed  bool
	waiters sync.WaitGroup // replacements waiting for the prober they replace

	checks, successes, failures, late atomic.Int64
	maxLateness                       atomic.Int64 // time.Duration
}

// NewMonitor returns a Monitor with no targets. Each result is logged at
// debug; state changes are for the Status's listeners to log.
func NewMonitor(log zerolog.Logger) *Monitor {
	return &Monitor{log: log, probers: make(map[string]*prober)}
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
	prev := m.probers[t.ID]
	p := &prober{m: m, t: t, done: make(chan struct{}), prev: prev}
	m.probers[t.ID] = p
	if prev == nil {
		p.start()
		return
	}
	prev.stop()
	m.waiters.Go(func() {
		prev.wait() // stopped, so this ends with its check in flight
		p.start()
	})
}

// Remove stops probing id and waits for its check in flight, if any, to end
// (it is cancelled, and its result is not recorded). Unknown IDs are ignored.
// A listener of the target's Status must not call it for that target: the
// check that delivers the change would wait for itself.
func (m *Monitor) Remove(id string) {
	m.mu.Lock()
	p := m.probers[id]
	delete(m.probers, id)
	m.mu.Unlock()
	if p != nil {
		p.stop()
		p.wait()
	}
}

// Close stops every prober and waits for their checks in flight. It is safe
// to call twice.
func (m *Monitor) Close() {
	m.mu.Lock()
	m.closed = true
	probers := m.probers
	m.probers = map[string]*prober{}
	m.mu.Unlock()
	for _, p := range probers {
		p.stop()
	}
	for _, p := range probers {
		p.wait()
	}
	m.waiters.Wait()
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

// prober schedules one target's checks.
type prober struct {
	m    *Monitor
	t    Target
	done chan struct{} // closed once stopped and no check runs

	mu      sync.Mutex
	prev    *prober     // the prober this one replaces, until it started
	timer   *time.Timer // nil until started
	due     time.Time   // when the next check should start
	stopped bool
	running bool          // a check is in flight
	ctx     *checkContext // the check in flight's
}

// start schedules the first check at once.
func (p *prober) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prev = nil // it is done
	if p.stopped {
		return
	}
	p.due = time.Now()
	p.timer = time.AfterFunc(0, p.fire)
}

// wait returns when neither this prober nor the one it replaces runs a check.
func (p *prober) wait() {
	<-p.done
	p.mu.Lock()
	prev := p.prev
	p.mu.Unlock()
	if prev != nil {
		prev.wait()
	}
}

// stop cancels the timer and the check in flight; done is closed when no
// check runs any more.
func (p *prober) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.running {
		p.ctx.cancel(context.Canceled) // fire closes done when the check returns
	} else {
		close(p.done)
	}
}

// fire runs one check, in the goroutine of the timer, records its result
// unless the prober was stopped meanwhile (a cancelled check says nothing
// about the backend), and schedules the next.
func (p *prober) fire() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	ctx := newCheckContext(p.t.Timeout)
	p.running, p.ctx = true, ctx
	due := p.due
	p.mu.Unlock()

	start := time.Now()
	p.m.noteLateness(start.Sub(due), p.t.Interval)
	err := p.t.Checker.Check(ctx, p.t.Address)
	ctx.cancel(context.Canceled)

	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if !stopped { // a stop from now on waits for this record: running is still true
		p.m.record(&p.t, start, err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.running, p.ctx = false, nil
	if p.stopped {
		close(p.done)
		return
	}
	// The schedule keeps its own rhythm, so lateness does not drift in; a
	// check that ran a whole interval past it starts the next at once (late)
	// and the schedule restarts from it.
	if p.due = nextDue(due, p.t.Interval); p.due.Before(start) {
		p.due = nextDue(start, p.t.Interval)
	}
	p.timer.Reset(time.Until(p.due))
}

// record counts a result, hands it to the target's Status and logs it.
func (m *Monitor) record(t *Target, start time.Time, err error) {
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
		Dur("duration_ms", r.Duration.Round(time.Microsecond)).Str("error", r.Err).Msg("health check")
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

// maxTick bounds the grid that check times are put on.
const maxTick = 10 * time.Millisecond

// nextDue is when a check should start after one due at prev: an interval
// later ±10% at random, put on a grid of ticks of a hundredth of the
// interval (at most maxTick) so that checks of many targets come due
// together. The process then wakes once per tick for a batch of checks
// rather than once per check: at 10 000 checks a second, a wake-up per
// check cost more CPU than the checks' own work in Go.
func nextDue(prev time.Time, interval time.Duration) time.Time {
	next := prev.Add(jittered(interval))
	tick := min(interval/100, maxTick)
	if tick <= 0 {
		return next
	}
	// Offsets keep the monotonic clock reading, which Truncate drops.
	next = next.Add(-next.Sub(next.Truncate(tick)))
	if earliest := prev.Add(interval - time.Duration(jitter*float64(interval))); next.Before(earliest) {
		next = next.Add(tick)
	}
	return next
}
