package resilience

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// event is one OnStateChange call.
type event struct {
	from, to BreakerState
	reason   string
}

func (e event) String() string { return fmt.Sprintf("%s->%s (%s)", e.from, e.to, e.reason) }

// recorder collects OnStateChange calls.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) record(from, to BreakerState, reason string) {
	r.mu.Lock()
	r.events = append(r.events, event{from, to, reason})
	r.mu.Unlock()
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// newTestBreaker returns a breaker on a fake clock that records its transitions.
func newTestBreaker(s BreakerSettings) (*Breaker, *fakeClock, *recorder) {
	clock, rec := newFakeClock(), &recorder{}
	s.Now = clock.Now
	s.OnStateChange = rec.record
	return NewBreaker(s), clock, rec
}

// mustAllow admits an attempt or fails the test.
func mustAllow(t *testing.T, b *Breaker) Attempt {
	t.Helper()
	a, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow in state %s: %v", b.State(), err)
	}
	return a
}

// fail reports n failed attempts.
func fail(t *testing.T, b *Breaker, n int) {
	t.Helper()
	for range n {
		b.Done(mustAllow(t, b), false)
	}
}

func wantState(t *testing.T, b *Breaker, want BreakerState) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state = %s, want %s", got, want)
	}
}

func wantEvents(t *testing.T, rec *recorder, want ...event) {
	t.Helper()
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("transitions = %v, want %v", got, want)
	}
}

func TestBreakerStateString(t *testing.T) {
	for s, want := range map[BreakerState]string{
		Closed: "closed", HalfOpen: "half_open", Open: "open", 7: "BreakerState(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("BreakerState(%d).String() = %q, want %q", int32(s), got, want)
		}
	}
}

func TestBreakerOpensAtExactlyMaxFailures(t *testing.T) {
	for _, tc := range []struct {
		maxFailures, want int
	}{
		{maxFailures: 0, want: 5}, // default
		{maxFailures: 1, want: 1},
		{maxFailures: 3, want: 3},
	} {
		t.Run(fmt.Sprint(tc.maxFailures), func(t *testing.T) {
			b, _, rec := newTestBreaker(BreakerSettings{MaxFailures: tc.maxFailures})
			fail(t, b, tc.want-1)
			wantState(t, b, Closed)
			wantEvents(t, rec)
			fail(t, b, 1)
			wantState(t, b, Open)
			reason := fmt.Sprintf("%d consecutive failures", tc.want)
			if tc.want == 1 {
				reason = "1 failure"
			}
			wantEvents(t, rec, event{Closed, Open, reason})
			if got, want := b.Stats(), (BreakerStats{Requests: int64(tc.want), Failures: int64(tc.want), StateChanges: 1}); got != want {
				t.Fatalf("stats = %+v, want %+v", got, want)
			}
		})
	}
}

func TestBreakerSuccessResetsStreak(t *testing.T) {
	b, _, _ := newTestBreaker(BreakerSettings{MaxFailures: 3})
	for range 4 {
		fail(t, b, 2)
		b.Done(mustAllow(t, b), true)
	}
	wantState(t, b, Closed)
	fail(t, b, 3)
	wantState(t, b, Open)
}

func TestBreakerOpenRejects(t *testing.T) {
	b, _, _ := newTestBreaker(BreakerSettings{MaxFailures: 2})
	fail(t, b, 2)
	for i := range 3 {
		if a, err := b.Allow(); !errors.Is(err, ErrOpen) || a != (Attempt{}) {
			t.Fatalf("Allow #%d while open = %+v, %v; want zero attempt, ErrOpen", i, a, err)
		}
	}
	if b.Ready() {
		t.Fatal("Ready while open = true")
	}
	if got, want := b.Stats(), (BreakerStats{Requests: 2, Failures: 2, Rejections: 3, StateChanges: 1}); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

// TestBreakerHalfOpenAtExactlyTimeout checks the lazy move, whichever method
// observes it first, and that listeners hear of it once.
func TestBreakerHalfOpenAtExactlyTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		observe func(*Breaker) bool // reports whether the breaker admits
	}{
		{"Allow", func(b *Breaker) bool { _, err := b.Allow(); return err == nil }},
		{"Ready", (*Breaker).Ready},
		{"State", func(b *Breaker) bool { return b.State() == HalfOpen }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clock, rec := newTestBreaker(BreakerSettings{MaxFailures: 1, OpenTimeout: 30 * time.Second})
			fail(t, b, 1)
			wantEvents(t, rec, event{Closed, Open, "1 failure"})

			clock.Advance(30*time.Second - time.Nanosecond)
			if tc.observe(b) {
				t.Fatalf("%s admits 1ns before the open timeout", tc.name)
			}
			wantEvents(t, rec)

			clock.Advance(time.Nanosecond)
			if !tc.observe(b) {
				t.Fatalf("%s refuses at the open timeout", tc.name)
			}
			wantEvents(t, rec, event{Open, HalfOpen, "open timeout elapsed"})
			b.State()
			b.Ready()
			wantEvents(t, rec) // the move is reported once
		})
	}
}

func TestBreakerHalfOpenTrialLimit(t *testing.T) {
	b, clock, _ := newTestBreaker(BreakerSettings{MaxFailures: 1, HalfOpenMax: 2, OpenTimeout: time.Second})
	fail(t, b, 1)
	clock.Advance(time.Second)
	for i := range 2 {
		if a := mustAllow(t, b); !a.Trial() {
			t.Fatalf("attempt %d while half-open is not a trial", i)
		}
		if got, want := b.Ready(), i == 0; got != want {
			t.Fatalf("Ready after %d trials = %v, want %v", i+1, got, want)
		}
	}
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyTrials) {
		t.Fatalf("third Allow while half-open: err = %v, want ErrTooManyTrials", err)
	}
	wantState(t, b, HalfOpen)
	if got, want := b.Stats(), (BreakerStats{Requests: 3, Failures: 1, Rejections: 1, StateChanges: 2}); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

func TestBreakerTrialDefaultLimitIsOne(t *testing.T) {
	b, clock, _ := newTestBreaker(BreakerSettings{MaxFailures: 1})
	fail(t, b, 1)
	clock.Advance(DefaultOpenTimeout)
	mustAllow(t, b)
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyTrials) {
		t.Fatalf("second Allow while half-open: err = %v, want ErrTooManyTrials", err)
	}
}

func TestBreakerTrialSuccessCloses(t *testing.T) {
	b, clock, rec := newTestBreaker(BreakerSettings{MaxFailures: 2, OpenTimeout: time.Second})
	fail(t, b, 2)
	clock.Advance(time.Second)
	b.Done(mustAllow(t, b), true)
	wantState(t, b, Closed)
	wantEvents(t, rec,
		event{Closed, Open, "2 consecutive failures"},
		event{Open, HalfOpen, "open timeout elapsed"},
		event{HalfOpen, Closed, "trial succeeded"},
	)
	// Closed again with a fresh streak: one failure does not reopen it.
	fail(t, b, 1)
	wantState(t, b, Closed)
}

func TestBreakerTrialFailureReopensWithFreshTimeout(t *testing.T) {
	b, clock, rec := newTestBreaker(BreakerSettings{MaxFailures: 1, OpenTimeout: 10 * time.Second})
	fail(t, b, 1)
	clock.Advance(25 * time.Second) // long past the first timeout
	trial := mustAllow(t, b)
	clock.Advance(3 * time.Second)
	b.Done(trial, false)
	wantState(t, b, Open)
	wantEvents(t, rec,
		event{Closed, Open, "1 failure"},
		event{Open, HalfOpen, "open timeout elapsed"},
		event{HalfOpen, Open, "trial failed"},
	)
	clock.Advance(10*time.Second - time.Nanosecond)
	wantState(t, b, Open)
	clock.Advance(time.Nanosecond)
	wantState(t, b, HalfOpen)
	if !b.Ready() {
		t.Fatal("second half-open period: Ready = false, want a fresh trial")
	}
	if a := mustAllow(t, b); !a.Trial() {
		t.Fatal("second half-open period admitted a non-trial attempt")
	}
}

func TestBreakerIgnoresStaleOutcomes(t *testing.T) {
	t.Run("closed attempt after opening", func(t *testing.T) {
		b, clock, _ := newTestBreaker(BreakerSettings{MaxFailures: 1, OpenTimeout: time.Second})
		slow := mustAllow(t, b)
		fail(t, b, 1)
		clock.Advance(time.Second)
		wantState(t, b, HalfOpen)
		b.Done(slow, true) // must not close a half-open breaker
		wantState(t, b, HalfOpen)
		b.Done(slow, false)
		wantState(t, b, HalfOpen)
	})
	t.Run("closed attempt from an earlier closed generation", func(t *testing.T) {
		b, clock, _ := newTestBreaker(BreakerSettings{MaxFailures: 1, OpenTimeout: time.Second})
		slow := mustAllow(t, b)
		fail(t, b, 1)
		clock.Advance(time.Second)
		b.Done(mustAllow(t, b), true) // closed again
		b.Done(slow, false)           // would open it, were it counted
		wantState(t, b, Closed)
	})
	t.Run("second trial after the first decided", func(t *testing.T) {
		b, clock, _ := newTestBreaker(BreakerSettings{MaxFailures: 1, HalfOpenMax: 2, OpenTimeout: time.Second})
		fail(t, b, 1)
		clock.Advance(time.Second)
		first, second := mustAllow(t, b), mustAllow(t, b)
		b.Done(first, true)
		b.Done(second, false)
		wantState(t, b, Closed)
	})
	t.Run("failure from before a reset", func(t *testing.T) {
		b, _, _ := newTestBreaker(BreakerSettings{MaxFailures: 3})
		slow := mustAllow(t, b)
		b.Reset()
		b.Done(slow, false) // would start the streak, were it counted
		fail(t, b, 2)
		wantState(t, b, Closed)
		fail(t, b, 1)
		wantState(t, b, Open)
	})
	t.Run("success from before a reset", func(t *testing.T) {
		b, _, _ := newTestBreaker(BreakerSettings{MaxFailures: 2})
		slow := mustAllow(t, b)
		b.Reset()
		fail(t, b, 1)
		b.Done(slow, true) // would reset the streak, were it counted
		fail(t, b, 1)
		wantState(t, b, Open)
	})
	t.Run("zero attempt", func(t *testing.T) {
		b, _, _ := newTestBreaker(BreakerSettings{MaxFailures: 1})
		b.Done(Attempt{}, false)
		wantState(t, b, Closed)
		if got := b.Stats(); got != (BreakerStats{}) {
			t.Fatalf("stats after a zero attempt = %+v, want none", got)
		}
	})
	t.Run("stale outcomes are still counted", func(t *testing.T) {
		b, _, _ := newTestBreaker(BreakerSettings{MaxFailures: 1})
		slow := mustAllow(t, b)
		fail(t, b, 1)
		b.Done(slow, true)
		if got, want := b.Stats(), (BreakerStats{Requests: 2, Successes: 1, Failures: 1, StateChanges: 1}); got != want {
			t.Fatalf("stats = %+v, want %+v", got, want)
		}
	})
}

func TestBreakerReset(t *testing.T) {
	b, _, rec := newTestBreaker(BreakerSettings{MaxFailures: 1})
	fail(t, b, 1)
	b.Reset()
	wantState(t, b, Closed)
	b.Reset() // already closed: no transition to report
	wantEvents(t, rec,
		event{Closed, Open, "1 failure"},
		event{Open, Closed, "reset"},
	)
	if got := b.Stats().StateChanges; got != 2 {
		t.Fatalf("StateChanges = %d, want 2", got)
	}
}

func TestNilBreakerAllows(t *testing.T) {
	var b *Breaker
	for range 10 {
		a, err := b.Allow()
		if err != nil {
			t.Fatalf("nil breaker Allow: %v", err)
		}
		b.Done(a, false)
	}
	b.Reset()
	if !b.Ready() || b.State() != Closed || b.Stats() != (BreakerStats{}) {
		t.Fatalf("nil breaker: Ready %v, State %s, Stats %+v; want true, closed, zero", b.Ready(), b.State(), b.Stats())
	}
}

func TestNewBreakerRefusesBadSettings(t *testing.T) {
	for _, s := range []BreakerSettings{
		{MaxFailures: -1},
		{MaxFailures: maxStreak + 1},
		{OpenTimeout: -time.Second},
		{HalfOpenMax: -1},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", s)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewBreaker(%+v) did not panic", s)
				}
			}()
			NewBreaker(s)
		}()
	}
	if err := (BreakerSettings{}).Validate(); err != nil {
		t.Errorf("Validate(zero settings) = %v, want nil", err)
	}
}

// TestBreakerListenerCallsBack checks that OnStateChange runs outside the lock
// (a listener calling back does not deadlock) and that a transition it causes
// is reported after the one it is handling.
func TestBreakerListenerCallsBack(t *testing.T) {
	clock := newFakeClock()
	var (
		b      *Breaker
		events []event
		states []BreakerState
	)
	b = NewBreaker(BreakerSettings{
		MaxFailures: 1,
		Now:         clock.Now,
		OnStateChange: func(from, to BreakerState, reason string) {
			state := b.State()
			b.Ready()
			b.Stats()
			if to == Open {
				b.Reset() // reported after this call returns, not inside it
			}
			events = append(events, event{from, to, reason})
			states = append(states, state)
		},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, _ := b.Allow()
		b.Done(a, false)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a listener calling back into the breaker deadlocked")
	}
	want := []event{{Closed, Open, "1 failure"}, {Open, Closed, "reset"}}
	if !slices.Equal(events, want) {
		t.Fatalf("transitions = %v, want %v", events, want)
	}
	if want := []BreakerState{Open, Closed}; !slices.Equal(states, want) {
		t.Fatalf("states seen by the listener = %v, want %v", states, want)
	}
}

// TestBreakerConcurrent hammers one breaker from several goroutines while the
// clock moves, then checks the counters add up and the reported transitions
// form one consistent chain.
func TestBreakerConcurrent(t *testing.T) {
	const workers, rounds = 8, 2000
	b, clock, rec := newTestBreaker(BreakerSettings{MaxFailures: 3, HalfOpenMax: 2, OpenTimeout: 10 * time.Millisecond})
	var (
		wg         sync.WaitGroup
		unexpected atomic.Int64 // Allow errors other than the two sentinels
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				switch {
				case w == 0:
					clock.Advance(time.Millisecond)
				case i%7 == 0:
					b.Ready()
					b.State()
					b.Stats()
				case i == rounds/2 && w == 1:
					b.Reset()
				}
				if a, err := b.Allow(); err == nil {
					b.Done(a, rng.IntN(3) != 0)
				} else if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrTooManyTrials) {
					unexpected.Add(1)
				}
			}
		})
	}
	wg.Wait()

	if n := unexpected.Load(); n > 0 {
		t.Errorf("Allow returned %d errors other than ErrOpen and ErrTooManyTrials", n)
	}
	st := b.Stats()
	if st.Requests+st.Rejections != workers*rounds {
		t.Errorf("requests %d + rejections %d != %d calls", st.Requests, st.Rejections, workers*rounds)
	}
	if st.Successes+st.Failures != st.Requests {
		t.Errorf("successes %d + failures %d != requests %d", st.Successes, st.Failures, st.Requests)
	}
	events := rec.take()
	if int64(len(events)) != st.StateChanges {
		t.Errorf("%d transitions reported, %d counted", len(events), st.StateChanges)
	}
	if st.StateChanges == 0 {
		t.Error("no transitions: the test exercised only the closed state")
	}
	prev := Closed
	for i, e := range events {
		if e.from != prev || e.from == e.to {
			t.Fatalf("transition %d is %v after a move to %s", i, e, prev)
		}
		prev = e.to
	}
	if got := b.State(); got != prev && !(prev == Open && got == HalfOpen) {
		t.Errorf("final state %s, last reported transition to %s", got, prev)
	}
}

func TestBreakerAllocs(t *testing.T) {
	b := NewBreaker(BreakerSettings{})
	if n := testing.AllocsPerRun(1000, func() {
		a, _ := b.Allow()
		b.Done(a, true)
	}); n != 0 {
		t.Errorf("Allow+Done (closed) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { b.Ready() }); n != 0 {
		t.Errorf("Ready (closed) allocates %v times, want 0", n)
	}
	open := NewBreaker(BreakerSettings{MaxFailures: 1})
	fail(t, open, 1)
	if n := testing.AllocsPerRun(1000, func() {
		open.Ready()
		open.Allow()
	}); n != 0 {
		t.Errorf("Ready+Allow (open) allocates %v times, want 0", n)
	}
}

func BenchmarkBreakerAllowDone(b *testing.B) {
	br := NewBreaker(BreakerSettings{})
	for b.Loop() {
		a, _ := br.Allow()
		br.Done(a, true)
	}
}

func BenchmarkBreakerAllowDoneParallel(b *testing.B) {
	br := NewBreaker(BreakerSettings{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, _ := br.Allow()
			br.Done(a, true)
		}
	})
}

func BenchmarkBreakerReady(b *testing.B) {
	br := NewBreaker(BreakerSettings{})
	for b.Loop() {
		br.Ready()
	}
}

func BenchmarkBreakerReadyOpen(b *testing.B) {
	br := NewBreaker(BreakerSettings{MaxFailures: 1})
	a, _ := br.Allow()
	br.Done(a, false)
	for b.Loop() {
		br.Ready()
	}
}
