package health

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testclock"
)

// fakeClock is a settable clock for Status and Passive.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock { return testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)) }

func failed(msg string) Result { return Result{OK: false, Err: msg, Duration: time.Millisecond} }
func passed() Result           { return Result{OK: true, Duration: time.Millisecond} }

// recorder collects the changes a listener receives.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) listen(c Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.changes {
		out = append(out, fmt.Sprintf("%s->%s: %s", c.From, c.To, c.Reason))
	}
	return out
}

// TestStatusTransitions drives a Status through every kind of transition,
// draining included, and checks state, verdict and the changes listeners got.
func TestStatusTransitions(t *testing.T) {
	type step struct {
		do          func(s *Status)
		state       State
		healthy     bool
		changeCount int // listener calls so far
	}
	check := func(ok bool) func(*Status) {
		return func(s *Status) {
			if ok {
				s.RecordCheck(passed())
			} else {
				s.RecordCheck(failed("dial tcp 127.0.0.1:1: connect: connection refused"))
			}
		}
	}
	drain := func(s *Status) { s.Drain("drained by api") }
	undrain := func(s *Status) { s.Undrain("undrained by api") }
	passive := func(s *Status) { s.MarkUnhealthy("passive: 5 consecutive connection failures") }
	revive := func(s *Status) { s.MarkHealthy("circuit breaker timeout elapsed") }

	tests := []struct {
		name    string
		steps   []step
		changes []string
	}{
		{
			name: "healthy to unhealthy after 3 failures, back after 2 successes",
			steps: []step{
				{check(false), Healthy, true, 0},
				{check(false), Healthy, true, 0},
				{check(false), Unhealthy, false, 1},
				{check(true), Unhealthy, false, 1},
				{check(true), Healthy, true, 2},
			},
			changes: []string{
				"healthy->unhealthy: 3 consecutive failed checks: dial tcp 127.0.0.1:1: connect: connection refused",
				"unhealthy->healthy: 2 consecutive successful checks",
			},
		},
		{
			name: "drain is sticky through failures; undrain to unhealthy",
			steps: []step{
				{drain, Draining, true, 1},
				{check(false), Draining, true, 1},
				{check(false), Draining, true, 1},
				{check(false), Draining, false, 1},
				{undrain, Unhealthy, false, 2},
			},
			changes: []string{
				"healthy->draining: drained by api",
				"draining->unhealthy: undrained by api",
			},
		},
		{
			name: "drain is sticky through recovery; undrain to healthy",
			steps: []step{
				{passive, Unhealthy, false, 1},
				{drain, Draining, false, 2},
				{check(true), Draining, false, 2},
				{check(true), Draining, true, 2},
				{undrain, Healthy, true, 3},
			},
			changes: []string{
				"healthy->unhealthy: passive: 5 consecutive connection failures",
				"unhealthy->draining: drained by api",
				"draining->healthy: undrained by api",
			},
		},
		{
			name: "drain and undrain are idempotent",
			steps: []step{
				{undrain, Healthy, true, 0},
				{drain, Draining, true, 1},
				{drain, Draining, true, 1},
				{undrain, Healthy, true, 2},
				{undrain, Healthy, true, 2},
			},
			changes: []string{"healthy->draining: drained by api", "draining->healthy: undrained by api"},
		},
		{
			name: "passive verdict resets the success streak",
			steps: []step{
				{check(true), Healthy, true, 0},
				{passive, Unhealthy, false, 1},
				{passive, Unhealthy, false, 1},
				{check(true), Unhealthy, false, 1},
				{check(true), Healthy, true, 2},
			},
			changes: []string{
				"healthy->unhealthy: passive: 5 consecutive connection failures",
				"unhealthy->healthy: 2 consecutive successful checks",
			},
		},
		{
			name: "passive verdict while draining keeps draining",
			steps: []step{
				{drain, Draining, true, 1},
				{passive, Draining, false, 1},
				{revive, Draining, true, 1},
				{undrain, Healthy, true, 2},
			},
			changes: []string{"healthy->draining: drained by api", "draining->healthy: undrained by api"},
		},
		{
			name: "mark healthy brings back without checks and resets failures",
			steps: []step{
				{passive, Unhealthy, false, 1},
				{revive, Healthy, true, 2},
				{revive, Healthy, true, 2},
				{check(false), Healthy, true, 2},
			},
			changes: []string{
				"healthy->unhealthy: passive: 5 consecutive connection failures",
				"unhealthy->healthy: circuit breaker timeout elapsed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStatus(StatusSettings{HealthyThreshold: 2, UnhealthyThreshold: 3, Now: newFakeClock().Now})
			var rec recorder
			s.Subscribe(rec.listen)
			for i, st := range tt.steps {
				st.do(s)
				if s.State() != st.state || s.Healthy() != st.healthy || s.Draining() != (st.state == Draining) {
					t.Fatalf("step %d: state %v healthy %v draining %v, want %v %v", i, s.State(), s.Healthy(), s.Draining(), st.state, st.healthy)
				}
				if n := len(rec.got()); n != st.changeCount {
					t.Fatalf("step %d: %d changes delivered, want %d: %q", i, n, st.changeCount, rec.got())
				}
				snap := s.Snapshot()
				if snap.State != st.state || snap.Healthy != st.healthy {
					t.Fatalf("step %d: snapshot state %v healthy %v, want %v %v", i, snap.State, snap.Healthy, st.state, st.healthy)
				}
			}
			if got := rec.got(); !reflect.DeepEqual(got, tt.changes) {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.changes, "\n"))
			}
		})
	}
}

func TestStatusSnapshot(t *testing.T) {
	clock := newFakeClock()
	s := NewStatus(StatusSettings{HealthyThreshold: 4, UnhealthyThreshold: 2, Now: clock.Now})
	start := clock.Now()

	snap := s.Snapshot()
	if snap.LastCheck != nil || !snap.LastChange.Equal(start) || len(snap.Events) != 0 || snap.State != Healthy {
		t.Fatalf("fresh snapshot: %+v", snap)
	}
	if snap.HealthyThreshold != 4 || snap.UnhealthyThreshold != 2 {
		t.Fatalf("thresholds %d/%d, want 4/2", snap.HealthyThreshold, snap.UnhealthyThreshold)
	}

	s.RecordCheck(passed()) // zero Time: the clock's now
	clock.Advance(time.Second)
	s.RecordCheck(failed("boom"))
	clock.Advance(time.Second)
	s.RecordCheck(Result{Time: clock.Now(), OK: false, Err: "bang", Duration: 2 * time.Millisecond})

	snap = s.Snapshot()
	if snap.ChecksSuccess != 1 || snap.ChecksFailure != 2 {
		t.Errorf("checks success %d failure %d, want 1 and 2", snap.ChecksSuccess, snap.ChecksFailure)
	}
	if snap.ConsecutiveFailures != 2 || snap.ConsecutiveSuccesses != 0 {
		t.Errorf("streaks: successes %d failures %d, want 0 and 2", snap.ConsecutiveSuccesses, snap.ConsecutiveFailures)
	}
	want := Result{Time: start.Add(2 * time.Second), OK: false, Err: "bang", Duration: 2 * time.Millisecond}
	if snap.LastCheck == nil || *snap.LastCheck != want {
		t.Errorf("last check %+v, want %+v", snap.LastCheck, want)
	}
	if !snap.LastChange.Equal(start.Add(2*time.Second)) || snap.State != Unhealthy {
		t.Errorf("state %v changed at %v, want unhealthy at %v", snap.State, snap.LastChange, start.Add(2*time.Second))
	}

	// Snapshots are copies.
	snap.LastCheck.Err = "changed"
	snap.Events[0].Reason = "changed"
	again := s.Snapshot()
	if again.LastCheck.Err != "bang" || again.Events[0].Reason == "changed" {
		t.Error("a snapshot shares memory with the Status")
	}

	s.SetThresholds(1, 0)
	snap = s.Snapshot()
	if snap.HealthyThreshold != 1 || snap.UnhealthyThreshold != DefaultUnhealthyThreshold || snap.ConsecutiveFailures != 2 {
		t.Errorf("after SetThresholds(1, 0): %d/%d failures %d", snap.HealthyThreshold, snap.UnhealthyThreshold, snap.ConsecutiveFailures)
	}
	s.RecordCheck(passed())
	if s.State() != Healthy {
		t.Errorf("one success with healthy threshold 1 left it %v", s.State())
	}
}

func TestStatusEventsNewestFirstCappedAt20(t *testing.T) {
	clock := newFakeClock()
	s := NewStatus(StatusSettings{Now: clock.Now})
	for i := range 30 {
		clock.Advance(time.Second)
		if i%2 == 0 {
			s.Drain(fmt.Sprintf("drain %d", i))
		} else {
			s.Undrain(fmt.Sprintf("undrain %d", i))
		}
	}
	clock.Advance(time.Second)
	s.AddEvent(Event{From: "closed", To: "open", Reason: "5 consecutive failures"})

	ev := s.Snapshot().Events
	if len(ev) != maxEvents {
		t.Fatalf("%d events, want %d", len(ev), maxEvents)
	}
	if ev[0].From != "closed" || ev[0].To != "open" || !ev[0].Time.Equal(clock.Now()) {
		t.Errorf("newest event %+v, want the circuit event at %v", ev[0], clock.Now())
	}
	if ev[1].Reason != "undrain 29" || ev[1].From != "draining" || ev[1].To != "healthy" {
		t.Errorf("second newest %+v, want undrain 29", ev[1])
	}
	if ev[19].Reason != "undrain 11" {
		t.Errorf("oldest kept %+v, want undrain 11", ev[19])
	}
	for i := 1; i < len(ev); i++ {
		if !ev[i].Time.Before(ev[i-1].Time) {
			t.Fatalf("events %d and %d are not newest first: %v, %v", i-1, i, ev[i-1].Time, ev[i].Time)
		}
	}
}

func TestStatusVerdictWhileDrainingIsInHistory(t *testing.T) {
	s := NewStatus(StatusSettings{UnhealthyThreshold: 1, Now: newFakeClock().Now})
	s.Drain("drained by api")
	s.RecordCheck(failed("refused"))
	ev := s.Snapshot().Events
	if len(ev) != 2 || ev[0].From != "healthy" || ev[0].To != "unhealthy" ||
		ev[0].Reason != "1 consecutive failed checks: refused (while draining)" {
		t.Fatalf("events %+v, want the verdict change recorded while draining", ev)
	}
	if !s.Snapshot().LastChange.Equal(ev[1].Time) {
		t.Error("a verdict change while draining moved LastChange, which is for state changes")
	}
}

// TestStatusListenerMayCallBack: listeners run outside the lock, so one that
// reads a snapshot or even changes the state does not deadlock, and every
// listener still sees the changes in order.
func TestStatusListenerMayCallBack(t *testing.T) {
	s := NewStatus(StatusSettings{UnhealthyThreshold: 1, Now: newFakeClock().Now})
	var seen []State
	s.Subscribe(func(c Change) {
		seen = append(seen, s.Snapshot().State)
		if c.To == Unhealthy {
			s.Drain("drained by listener") // re-entrant change, delivered after this one
		}
	})
	var rec recorder
	s.Subscribe(rec.listen)

	s.RecordCheck(failed("refused"))

	want := []string{
		"healthy->unhealthy: 1 consecutive failed checks: refused",
		"unhealthy->draining: drained by listener",
	}
	if got := rec.got(); !reflect.DeepEqual(got, want) {
		t.Fatalf("second listener got %q, want %q", got, want)
	}
	if len(seen) != 2 || seen[1] != Draining {
		t.Fatalf("first listener saw states %v", seen)
	}
}

func TestStatusUnsubscribe(t *testing.T) {
	s := NewStatus(StatusSettings{Now: newFakeClock().Now})
	var a, b recorder
	unsubA := s.Subscribe(a.listen)
	s.Subscribe(b.listen)
	s.Drain("one")
	unsubA()
	unsubA() // twice is fine
	s.Undrain("two")
	if len(a.got()) != 1 || len(b.got()) != 2 {
		t.Fatalf("after unsubscribe: a got %q, b got %q", a.got(), b.got())
	}
}

// TestStatusConcurrentChangesArriveInOrder hammers a Status from several
// goroutines; the listener must see a chain where each change starts where
// the previous one ended.
func TestStatusConcurrentChangesArriveInOrder(t *testing.T) {
	s := NewStatus(StatusSettings{HealthyThreshold: 1, UnhealthyThreshold: 1})
	var mu sync.Mutex
	last := Healthy
	broken := ""
	s.Subscribe(func(c Change) {
		mu.Lock()
		defer mu.Unlock()
		if c.From != last && broken == "" {
			broken = fmt.Sprintf("change %v->%v after a change to %v", c.From, c.To, last)
		}
		last = c.To
	})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				switch (g + i) % 4 {
				case 0:
					s.RecordCheck(passed())
				case 1:
					s.MarkUnhealthy("passive")
				case 2:
					s.Drain("drain")
				case 3:
					s.Undrain("undrain")
				}
				_ = s.State()
				_ = s.Snapshot()
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if broken != "" {
		t.Fatal(broken)
	}
	if last != s.State() {
		t.Fatalf("last change went to %v, state is %v", last, s.State())
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{Healthy: "healthy", Unhealthy: "unhealthy", Draining: "draining", State(7): "unknown"} {
		if st.String() != want {
			t.Errorf("State(%d).String() = %q, want %q", st, st.String(), want)
		}
	}
}

func BenchmarkStatusState(b *testing.B) {
	s := NewStatus(StatusSettings{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.State() != Healthy {
				b.Error("not healthy")
			}
		}
	})
}

func BenchmarkStatusHealthy(b *testing.B) {
	s := NewStatus(StatusSettings{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.Healthy() {
				b.Error("not healthy")
			}
		}
	})
}

func BenchmarkStatusRecordCheck(b *testing.B) {
	s := NewStatus(StatusSettings{})
	r := passed()
	b.ReportAllocs()
	for b.Loop() {
		s.RecordCheck(r)
	}
}

// TestStatusPending: a Status made pending is neither healthy nor unhealthy
// until its first check, which decides at once whatever the thresholds;
// after that the thresholds apply as usual. Draining keeps the pending
// verdict underneath, and a forced verdict or Decide ends it too.
func TestStatusPending(t *testing.T) {
	events := func(s *Status) []string {
		var out []string
		for _, e := range s.Snapshot().Events {
			out = append(out, e.From+"->"+e.To+": "+e.Reason)
		}
		return out
	}
	pending := func(t *testing.T) (*Status, *recorder) {
		t.Helper()
		s := NewStatus(StatusSettings{HealthyThreshold: 2, UnhealthyThreshold: 3, Now: newFakeClock().Now, Pending: true})
		rec := &recorder{}
		s.Subscribe(rec.listen)
		snap := s.Snapshot()
		if s.State() != Pending || s.Healthy() || !snap.Pending || snap.Healthy || snap.State != Pending || len(snap.Events) != 0 {
			t.Fatalf("fresh pending status: state %v healthy %v snapshot %+v", s.State(), s.Healthy(), snap)
		}
		return s, rec
	}

	t.Run("first check passes", func(t *testing.T) {
		s, rec := pending(t)
		s.RecordCheck(passed())
		if s.State() != Healthy || !s.Healthy() || s.Snapshot().Pending {
			t.Fatalf("after a passing first check: %v healthy %v", s.State(), s.Healthy())
		}
		if got := rec.got(); !reflect.DeepEqual(got, []string{"pending->healthy: first check passed"}) {
			t.Fatalf("changes %q", got)
		}
		// From here the thresholds apply: 3 failures to go down.
		s.RecordCheck(failed("refused"))
		s.RecordCheck(failed("refused"))
		if s.State() != Healthy {
			t.Fatalf("two failures after the first check took it %v", s.State())
		}
	})

	t.Run("first check fails", func(t *testing.T) {
		s, rec := pending(t)
		s.RecordCheck(failed("connection refused"))
		snap := s.Snapshot()
		if s.State() != Unhealthy || s.Healthy() || snap.Pending || snap.ConsecutiveFailures != 1 {
			t.Fatalf("after a failing first check: %v healthy %v failures %d", s.State(), s.Healthy(), snap.ConsecutiveFailures)
		}
		if got := events(s); !reflect.DeepEqual(got, []string{"pending->unhealthy: first check failed: connection refused"}) {
			t.Fatalf("events %q", got)
		}
		if got := rec.got(); len(got) != 1 {
			t.Fatalf("changes %q", got)
		}
		// Back with the healthy threshold's run of successes.
		s.RecordCheck(passed())
		if s.State() != Unhealthy {
			t.Fatal("one success brought it back; the healthy threshold is 2")
		}
		s.RecordCheck(passed())
		if s.State() != Healthy {
			t.Fatalf("two successes left it %v", s.State())
		}
	})

	t.Run("drained while pending", func(t *testing.T) {
		s, _ := pending(t)
		s.Drain("by api")
		if snap := s.Snapshot(); snap.State != Draining || !snap.Pending {
			t.Fatalf("drained pending: %+v", snap)
		}
		s.Undrain("by api")
		if s.State() != Pending {
			t.Fatalf("undrained before any check: %v, want pending", s.State())
		}
		s.Drain("by api")
		s.RecordCheck(failed("refused"))
		if s.State() != Draining || s.Healthy() || s.Snapshot().Pending {
			t.Fatalf("checked while draining: %v healthy %v", s.State(), s.Healthy())
		}
		if got := events(s)[0]; got != "pending->unhealthy: first check failed: refused (while draining)" {
			t.Fatalf("newest event %q", got)
		}
		s.Undrain("by api")
		if s.State() != Unhealthy {
			t.Fatalf("undrained after a failed first check: %v", s.State())
		}
	})

	t.Run("passive verdict", func(t *testing.T) {
		s, _ := pending(t)
		s.MarkUnhealthy("passive: 3 consecutive failures")
		if s.State() != Unhealthy || events(s)[0] != "pending->unhealthy: passive: 3 consecutive failures" {
			t.Fatalf("%v %q", s.State(), events(s))
		}
	})

	t.Run("decide", func(t *testing.T) {
		s, rec := pending(t)
		s.Decide("active checks turned off")
		if s.State() != Healthy || !s.Healthy() {
			t.Fatalf("decided: %v", s.State())
		}
		s.Decide("again")
		if got := rec.got(); !reflect.DeepEqual(got, []string{"pending->healthy: active checks turned off"}) {
			t.Fatalf("changes %q", got)
		}
		started := NewStatus(StatusSettings{})
		started.Decide("not pending")
		if started.State() != Healthy || len(started.Snapshot().Events) != 0 {
			t.Fatal("Decide changed a status that was not pending")
		}
	})
}
