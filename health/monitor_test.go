package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// fakeChecker records when it is called and how many calls overlap. It
// fails with err, takes hold (fake time) per check, or with block waits for
// its context to end.
type fakeChecker struct {
	err   error
	hold  time.Duration
	block bool

	mu         sync.Mutex
	calls      []time.Time
	running    int
	maxRunning int
	addrs      []string
}

func (f *fakeChecker) Check(ctx context.Context, addr string) error {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	f.addrs = append(f.addrs, addr)
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	switch {
	case f.block:
		<-ctx.Done()
		return ctx.Err()
	case f.hold > 0:
		select {
		case <-time.After(f.hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.err
}

func (f *fakeChecker) snapshot() (calls []time.Time, maxRunning int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...), f.maxRunning
}

func target(id string, c Checker, st *Status) Target {
	return Target{ID: id, Address: "10.0.0.1:5432", Checker: c, Interval: time.Second, Timeout: 500 * time.Millisecond, Status: st}
}

func TestMonitorFirstCheckAtOnceThenEveryIntervalWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		c := &fakeChecker{}
		st := NewStatus(StatusSettings{})
		start := time.Now()
		m.Add(target("svc/a", c, st))
		synctest.Wait()
		calls, _ := c.snapshot()
		if len(calls) != 1 || !calls[0].Equal(start) {
			t.Fatalf("right after Add: calls at %v, want one at %v", calls, start)
		}

		time.Sleep(100 * time.Second)
		calls, _ = c.snapshot()
		if len(calls) < 90 || len(calls) > 112 {
			t.Fatalf("%d checks in 100s at a 1s interval", len(calls))
		}
		jittered := false
		for i := 1; i < len(calls); i++ {
			gap := calls[i].Sub(calls[i-1])
			if gap < 900*time.Millisecond || gap > 1100*time.Millisecond {
				t.Fatalf("gap %v between checks %d and %d, want 1s ±10%%", gap, i-1, i)
			}
			if gap != time.Second {
				jittered = true
			}
		}
		if !jittered {
			t.Fatal("every gap is exactly the interval: no jitter")
		}
		snap := st.Snapshot()
		if snap.ChecksSuccess != int64(len(calls)) || snap.LastCheck == nil || !snap.LastCheck.OK {
			t.Fatalf("status recorded %d successes, last %+v; want %d", snap.ChecksSuccess, snap.LastCheck, len(calls))
		}
		stats := m.Stats()
		if stats.Checks != int64(len(calls)) || stats.Successes != stats.Checks || stats.Failures != 0 || stats.Late != 0 {
			t.Fatalf("stats %+v after %d checks", stats, len(calls))
		}
	})
}

func TestMonitorRecordsFailuresAndFlipsStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		c := &fakeChecker{err: errors.New("dial tcp 10.0.0.1:5432: connect: connection refused")}
		st := NewStatus(StatusSettings{UnhealthyThreshold: 3})
		m.Add(target("svc/a", c, st))
		time.Sleep(2500 * time.Millisecond) // checks at 0, ~1s, ~2s
		synctest.Wait()
		if st.State() != Unhealthy {
			t.Fatalf("state %v after 3 failed checks", st.State())
		}
		snap := st.Snapshot()
		if snap.LastCheck.OK || snap.LastCheck.Err != c.err.Error() || snap.ChecksFailure != 3 {
			t.Fatalf("last check %+v, %d failures", snap.LastCheck, snap.ChecksFailure)
		}
		if !strings.Contains(snap.Events[0].Reason, "3 consecutive failed checks: dial tcp") {
			t.Fatalf("event reason %q", snap.Events[0].Reason)
		}
		if s := m.Stats(); s.Failures != 3 || s.Successes != 0 || s.Checks != 3 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestMonitorTimeoutCancelsAndChecksNeverOverlap: a checker that blocks until
// cancelled is cut at Timeout; with a Timeout longer than the interval the
// next check waits for the previous one and starts late, never alongside.
func TestMonitorTimeoutCancelsAndChecksNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		c := &fakeChecker{block: true}
		st := NewStatus(StatusSettings{})
		tg := target("svc/slow", c, st)
		tg.Timeout = 3 * time.Second // longer than the 1s interval
		m.Add(tg)
		time.Sleep(10 * time.Second)
		synctest.Wait()

		calls, maxRunning := c.snapshot()
		if maxRunning != 1 {
			t.Fatalf("%d checks of one target ran at once", maxRunning)
		}
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap != 3*time.Second {
				t.Fatalf("check %d started %v after the previous, want right after its 3s timeout", i, gap)
			}
		}
		snap := st.Snapshot()
		if snap.LastCheck == nil || snap.LastCheck.Duration != 3*time.Second ||
			!strings.Contains(snap.LastCheck.Err, context.DeadlineExceeded.Error()) {
			t.Fatalf("last check %+v, want a 3s timeout", snap.LastCheck)
		}
		s := m.Stats()
		if s.Late != int64(len(calls)-1) || s.MaxLateness < 1900*time.Millisecond || s.MaxLateness > 2100*time.Millisecond {
			t.Fatalf("stats %+v: every check but the first should be late by about 2s", s)
		}
	})
}

func TestMonitorRemoveWaitsForCheckInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		c := &fakeChecker{block: true}
		st := NewStatus(StatusSettings{})
		tg := target("svc/a", c, st)
		tg.Timeout = time.Hour
		m.Add(tg)
		synctest.Wait() // the first check is in flight, blocked

		m.Remove("svc/a")
		c.mu.Lock()
		running := c.running
		c.mu.Unlock()
		if running != 0 {
			t.Fatal("Remove returned while a check was still running")
		}
		time.Sleep(time.Minute)
		if calls, _ := c.snapshot(); len(calls) != 1 {
			t.Fatalf("%d checks after Remove, want only the one in flight", len(calls))
		}
		if st.Snapshot().LastCheck != nil || m.Stats().Checks != 0 {
			t.Fatal("the check cancelled by Remove was recorded as a result")
		}
		m.Remove("svc/a")   // again: nothing
		m.Remove("unknown") // never added: nothing
	})
}

func TestMonitorAddReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		old := &fakeChecker{hold: 200 * time.Millisecond}
		st := NewStatus(StatusSettings{})
		m.Add(target("svc/a", old, st))
		time.Sleep(100 * time.Millisecond) // old's first check is in flight

		neu := &fakeChecker{}
		tg := target("svc/a", neu, st)
		tg.Address = "10.0.0.2:5432"
		m.Add(tg)
		synctest.Wait()
		if calls, _ := neu.snapshot(); len(calls) != 1 {
			t.Fatalf("replacement made %d checks at once, want 1", len(calls))
		}
		time.Sleep(10 * time.Second)
		if calls, _ := old.snapshot(); len(calls) != 1 {
			t.Fatalf("replaced checker was called %d times, want only its first", len(calls))
		}
		neu.mu.Lock()
		addr := neu.addrs[0]
		neu.mu.Unlock()
		if addr != "10.0.0.2:5432" {
			t.Fatalf("replacement checked %s", addr)
		}
		// Old's cancelled check is not recorded; the new one's are.
		calls, _ := neu.snapshot()
		if got := st.Snapshot().ChecksSuccess; got != int64(len(calls)) {
			t.Fatalf("status has %d results, the new checker made %d checks", got, len(calls))
		}
	})
}

func TestMonitorReplacementWaitsForOldCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		shared := &fakeChecker{block: true} // both targets use it: never two at once
		st := NewStatus(StatusSettings{})
		tg := target("svc/a", shared, st)
		tg.Timeout = time.Hour
		m.Add(tg)
		synctest.Wait() // the first check is in flight
		// Replace it several times before it ends: none of the replacements
		// may start while it, or another, runs.
		for range 3 {
			m.Add(tg)
		}
		synctest.Wait()
		time.Sleep(time.Minute)
		calls, maxRunning := shared.snapshot()
		if maxRunning != 1 {
			t.Fatalf("%d checks overlapped across replacements", maxRunning)
		}
		// The first check, one by the last replacement, and perhaps one by a
		// replacement that started before the next Add stopped it.
		if len(calls) < 2 || len(calls) > 4 {
			t.Fatalf("%d checks, want the first, one per replacement at most, and one by the last", len(calls))
		}
		m.Remove("svc/a")
		shared.mu.Lock()
		running := shared.running
		shared.mu.Unlock()
		if running != 0 {
			t.Fatal("Remove returned with a check in flight")
		}
	})
}

func TestMonitorCloseStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		checkers := make([]*fakeChecker, 50)
		for i := range checkers {
			checkers[i] = &fakeChecker{hold: 100 * time.Millisecond}
			m.Add(target(fmt.Sprintf("svc/b%d", i), checkers[i], NewStatus(StatusSettings{})))
		}
		time.Sleep(5 * time.Second)
		m.Close()
		m.Close()
		before := m.Stats().Checks
		m.Add(target("late", &fakeChecker{}, NewStatus(StatusSettings{}))) // ignored after Close
		time.Sleep(time.Minute)
		if after := m.Stats().Checks; after != before {
			t.Fatalf("%d checks after Close", after-before)
		}
		if before < 50*4 {
			t.Fatalf("only %d checks of 50 targets in 5s", before)
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

func TestMonitorDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		c := &fakeChecker{block: true}
		st := NewStatus(StatusSettings{})
		m.Add(Target{ID: "x", Address: "a:1", Checker: c, Status: st}) // zero interval and timeout
		time.Sleep(DefaultTimeout + time.Millisecond)
		synctest.Wait()
		if r := st.Snapshot().LastCheck; r == nil || r.Duration != DefaultTimeout {
			t.Fatalf("last check %+v, want cut at the default timeout %v", r, DefaultTimeout)
		}
		time.Sleep(DefaultInterval * 2)
		if calls, _ := c.snapshot(); len(calls) < 2 || len(calls) > 3 {
			t.Fatalf("%d checks in 23s with the default 10s interval", len(calls))
		}
	})
}

func TestMonitorAddPanicsOnIncompleteTarget(t *testing.T) {
	m := NewMonitor(zerolog.Nop())
	defer m.Close()
	for _, tg := range []Target{
		{Checker: &fakeChecker{}, Status: NewStatus(StatusSettings{})},
		{ID: "a", Status: NewStatus(StatusSettings{})},
		{ID: "a", Checker: &fakeChecker{}},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "health: Monitor.Add") {
					t.Errorf("Add(%+v) did not panic with a clear message: %v", tg, r)
				}
			}()
			m.Add(tg)
		}()
	}
}

// TestMonitorRealTCPCheck runs the monitor with a real tcp checker against a
// loopback listener, then stops the listener and waits for the backend to
// turn unhealthy. Both waits are bounded.
func TestMonitorRealTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	st := NewStatus(StatusSettings{HealthyThreshold: 1, UnhealthyThreshold: 1})
	changes := make(chan Change, 10)
	st.Subscribe(func(c Change) { changes <- c })
	m := NewMonitor(zerolog.Nop())
	defer m.Close()
	m.Add(Target{ID: "svc/real", Address: l.Addr().String(), Checker: mustChecker(t, CheckSettings{Type: "tcp"}),
		Interval: 20 * time.Millisecond, Timeout: time.Second, Status: st})
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no check connected within 10s")
	}
	l.Close()
	select {
	case c := <-changes:
		if c.To != Unhealthy || !strings.Contains(c.Reason, refused) {
			t.Fatalf("change %+v, want unhealthy with connection refused", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend not unhealthy within 10s of its listener closing")
	}
	m.Remove("svc/real")
	if s := m.Stats(); s.Successes < 1 || s.Failures < 1 {
		t.Fatalf("stats %+v, want at least one success and one failure", s)
	}
}

func TestNextDueStaysInJitterOnTheGrid(t *testing.T) {
	// A monotonic reading in prev, as the monitor's times have.
	base := time.Now()
	for _, interval := range []time.Duration{time.Millisecond, 50 * time.Millisecond, time.Second, 10 * time.Second, time.Hour} {
		tick := min(interval/100, maxTick)
		for i := range 2000 {
			prev := base.Add(time.Duration(i) * 7919 * time.Microsecond)
			next := nextDue(prev, interval)
			if gap := next.Sub(prev); gap < interval*9/10 || gap > interval*11/10 {
				t.Fatalf("interval %v: next due %v after the previous, want within ±10%%", interval, gap)
			}
			if tick > 0 && !next.Equal(next.Truncate(tick)) {
				t.Fatalf("interval %v: next due %v is not on the %v grid", interval, next, tick)
			}
		}
	}
}

// TestMonitorBatchesChecksOnTicks: many targets' checks come due on shared
// ticks, so the process wakes per tick, not per check.
func TestMonitorBatchesChecksOnTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(zerolog.Nop())
		defer m.Close()
		c := &fakeChecker{}
		for i := range 500 {
			m.Add(target(fmt.Sprintf("svc/b%d", i), c, NewStatus(StatusSettings{})))
			time.Sleep(time.Millisecond) // first checks spread over 500 ms
		}
		time.Sleep(5 * time.Second)
		calls, _ := c.snapshot()
		instants := map[time.Time]bool{}
		for _, at := range calls[500:] { // after every target's first check
			if !at.Equal(at.Truncate(maxTick)) {
				t.Fatalf("a check started at %v, off the %v grid", at, maxTick)
			}
			instants[at] = true
		}
		if len(calls) < 500*5 || len(instants) > 5*int(time.Second/maxTick)+1 {
			t.Fatalf("%d checks at %d instants in 5s", len(calls)-500, len(instants))
		}
	})
}
