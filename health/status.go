package health

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxEvents is how many events a Status keeps (SPEC §4: the last 20).
const maxEvents = 20

// Result is the outcome of one active check.
type Result struct {
	Time     time.Time
	OK       bool
	Duration time.Duration
	Err      string // "" when OK
}

// Event is one entry of a backend's history: a state change, or another kind
// of change (a circuit breaker's) recorded with AddEvent.
type Event struct {
	Time     time.Time
	From, To string
	Reason   string
}

// Change is a State change, as listeners receive it.
type Change struct {
	Time     time.Time
	From, To State
	Reason   string
}

// StatusSettings configures a Status. The zero value uses the defaults.
type StatusSettings struct {
	HealthyThreshold   int              // consecutive successes: unhealthy -> healthy; < 1 means 2
	UnhealthyThreshold int              // consecutive failures: healthy -> unhealthy; < 1 means 3
	Now                func() time.Time // nil means time.Now
	// Pending starts the Status in the Pending state instead of Healthy:
	// the first check result (or a forced verdict, or Decide) then moves it
	// to healthy or unhealthy at once, whatever the thresholds.
	Pending bool
}

// StatusSnapshot is a consistent copy of a Status.
type StatusSnapshot struct {
	State                                State
	Healthy                              bool // false while pending
	Pending                              bool // no verdict yet, also while draining
	ConsecutiveSuccesses                 int
	ConsecutiveFailures                  int
	HealthyThreshold, UnhealthyThreshold int
	LastCheck                            *Result // nil before the first check
	LastChange                           time.Time
	Events                               []Event // newest first, at most 20
	ChecksSuccess, ChecksFailure         int64
}

// Status is one backend's health state machine. It starts healthy (at
// start every backend is healthy), or pending when StatusSettings.Pending
// says so (a backend added while running): then the first check decides,
// pending -> healthy or pending -> unhealthy. State, Healthy and Draining
// take no lock, so the data path may call them on every pick; everything
// else is serialised by a mutex that is never held while calling out.
//
// Draining is sticky: check results and passive verdicts still move the
// verdict (and are recorded in the history) while draining, but only Undrain
// leaves the draining state, to whatever the verdict then is.
type Status struct {
	state   atomic.Int32 // State
	healthy atomic.Bool
	now     func() time.Time

	mu         sync.Mutex
	streak     Streak
	draining   bool
	undecided  bool // pending: no check has decided the verdict yet
	lastCheck  Result
	checked    bool
	lastChange time.Time
	events     [maxEvents]Event // ring; events[head] is the oldest once full
	head, n    int
	okChecks   int64
	badChecks  int64

	// Listener delivery: changes queue up under mu and are delivered, in
	// order and outside mu, by whichever caller finds no delivery running.
	subs       []*subscription // copy-on-write
	nextSubID  int
	pending    []Change
	delivering bool
}

type subscription struct {
	fn     func(Change)
	active atomic.Bool
}

// NewStatus returns a healthy Status, or a pending one if s.Pending.
func NewStatus(s StatusSettings) *Status {
	st := &Status{now: s.Now, streak: NewStreak(s.HealthyThreshold, s.UnhealthyThreshold), undecided: s.Pending}
	if st.now == nil {
		st.now = time.Now
	}
	if s.Pending {
		st.state.Store(int32(Pending))
	} else {
		st.state.Store(int32(Healthy))
		st.healthy.Store(true)
	}
	st.lastChange = st.now() // "in this state since": since it was created
	return st
}

// State is the current state; it takes no lock.
func (s *Status) State() State { return State(s.state.Load()) }

// Healthy is the checks' verdict, also while draining (false while
// pending); it takes no lock.
func (s *Status) Healthy() bool { return s.healthy.Load() }

// Draining reports whether an operator drains the backend; it takes no lock.
func (s *Status) Draining() bool { return s.State() == Draining }

// RecordCheck records an active check's result: it extends a streak and may
// flip the verdict. While pending, the result decides the verdict at once. A
// zero r.Time means now.
func (s *Status) RecordCheck(r Result) {
	if r.Time.IsZero() {
		r.Time = s.now()
	}
	s.mu.Lock()
	s.lastCheck, s.checked = r, true
	if r.OK {
		s.okChecks++
	} else {
		s.badChecks++
	}
	flipped := s.streak.Record(r.OK)
	switch {
	case s.undecided && r.OK:
		s.verdictChangedLocked(r.Time, "first check passed")
	case s.undecided:
		s.streak.Force(false) // keeps the failure just counted
		s.verdictChangedLocked(r.Time, "first check failed: "+r.Err)
	case flipped:
		var reason string
		if r.OK {
			reason = fmt.Sprintf("%d consecutive successful checks", s.streak.Successes())
		} else {
			reason = fmt.Sprintf("%d consecutive failed checks: %s", s.streak.Failures(), r.Err)
		}
		s.verdictChangedLocked(r.Time, reason)
	}
	s.unlockAndNotify()
}

// MarkUnhealthy sets the verdict to unhealthy now (a passive verdict) and
// resets the success streak, so active checks must bring it back with a full
// run of successes. It does nothing more when already unhealthy.
func (s *Status) MarkUnhealthy(reason string) { s.force(false, reason) }

// MarkHealthy sets the verdict to healthy now and resets the failure streak,
// for example when the circuit breaker's timeout elapsed and no active checks
// run to bring the backend back.
func (s *Status) MarkHealthy(reason string) { s.force(true, reason) }

func (s *Status) force(healthy bool, reason string) {
	s.mu.Lock()
	if s.streak.Force(healthy) || s.undecided {
		s.verdictChangedLocked(s.now(), reason)
	}
	s.unlockAndNotify()
}

// Decide ends the pending state without a check (active checks were turned
// off): the backend becomes healthy. It does nothing when not pending.
func (s *Status) Decide(reason string) {
	s.mu.Lock()
	if s.undecided {
		s.streak.Force(true)
		s.verdictChangedLocked(s.now(), reason)
	}
	s.unlockAndNotify()
}

// verdictChangedLocked publishes a flipped (or, from pending, a first)
// verdict. While draining the state stays draining: the flip goes into the
// history only, so an operator sees that a drained backend died, but
// listeners hear of it at Undrain.
func (s *Status) verdictChangedLocked(t time.Time, reason string) {
	healthy := s.streak.Healthy()
	s.healthy.Store(healthy)
	from := verdictState(!healthy)
	if s.undecided {
		from, s.undecided = Pending, false
	}
	if s.draining {
		s.addEventLocked(Event{Time: t, From: from.String(),
			To: verdictState(healthy).String(), Reason: reason + " (while draining)"})
		return
	}
	s.setStateLocked(t, verdictState(healthy), reason)
}

// verdictLocked is the state the backend has when it is not draining.
func (s *Status) verdictLocked() State {
	if s.undecided {
		return Pending
	}
	return verdictState(s.streak.Healthy())
}

// Drain starts draining; it reports false when already draining.
func (s *Status) Drain(reason string) (changed bool) {
	s.mu.Lock()
	if !s.draining {
		s.draining, changed = true, true
		s.setStateLocked(s.now(), Draining, reason)
	}
	s.unlockAndNotify()
	return changed
}

// Undrain stops draining, to healthy, unhealthy or pending as the verdict
// says; it reports false when not draining.
func (s *Status) Undrain(reason string) (changed bool) {
	s.mu.Lock()
	if s.draining {
		s.draining, changed = false, true
		s.setStateLocked(s.now(), s.verdictLocked(), reason)
	}
	s.unlockAndNotify()
	return changed
}

// AddEvent records another kind of change (a circuit breaker's) in the
// history. A zero e.Time means now. Listeners are not called.
func (s *Status) AddEvent(e Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.mu.Lock()
	s.addEventLocked(e)
	s.mu.Unlock()
}

// SetThresholds changes the thresholds (on a reload) and keeps the current
// streaks; the new thresholds apply from the next check. A threshold < 1
// means its default.
func (s *Status) SetThresholds(healthy, unhealthy int) {
	s.mu.Lock()
	s.streak.SetThresholds(healthy, unhealthy)
	s.mu.Unlock()
}

// Subscribe calls fn with every State change, in order, outside any lock of
// the Status, so fn may call back into it. fn must not block for long: other
// callers' changes wait for it. unsubscribe may be called more than once;
// after it returns only a delivery already under way may still call fn.
func (s *Status) Subscribe(fn func(Change)) (unsubscribe func()) {
	sub := &subscription{fn: fn}
	sub.active.Store(true)
	s.mu.Lock()
	s.subs = append(s.subs[:len(s.subs):len(s.subs)], sub)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !sub.active.Swap(false) {
			return
		}
		subs := make([]*subscription, 0, len(s.subs))
		for _, x := range s.subs {
			if x != sub {
				subs = append(subs, x)
			}
		}
		s.subs = subs
	}
}

// Snapshot returns a consistent copy of everything the admin API shows.
func (s *Status) Snapshot() StatusSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	rise, fall := s.streak.Thresholds()
	snap := StatusSnapshot{
		State:                s.State(),
		Healthy:              s.streak.Healthy() && !s.undecided,
		Pending:              s.undecided,
		ConsecutiveSuccesses: s.streak.Successes(),
		ConsecutiveFailures:  s.streak.Failures(),
		HealthyThreshold:     rise,
		UnhealthyThreshold:   fall,
		LastChange:           s.lastChange,
		Events:               make([]Event, s.n),
		ChecksSuccess:        s.okChecks,
		ChecksFailure:        s.badChecks,
	}
	if s.checked {
		r := s.lastCheck
		snap.LastCheck = &r
	}
	for i := range s.n {
		snap.Events[i] = s.events[(s.head+s.n-1-i)%maxEvents]
	}
	return snap
}

func (s *Status) setStateLocked(t time.Time, to State, reason string) {
	from := s.State()
	if from == to {
		return
	}
	s.state.Store(int32(to))
	s.lastChange = t
	s.addEventLocked(Event{Time: t, From: from.String(), To: to.String(), Reason: reason})
	if len(s.subs) > 0 {
		s.pending = append(s.pending, Change{Time: t, From: from, To: to, Reason: reason})
	}
}

func (s *Status) addEventLocked(e Event) {
	if s.n < maxEvents {
		s.events[(s.head+s.n)%maxEvents] = e
		s.n++
		return
	}
	s.events[s.head] = e
	s.head = (s.head + 1) % maxEvents
}

// unlockAndNotify releases mu and, unless another caller is already
// delivering, delivers every queued change to the listeners outside the lock.
// Changes queued meanwhile (also by a listener itself) are delivered by the
// same loop, so listeners see them in the order they happened.
func (s *Status) unlockAndNotify() {
	if s.delivering || len(s.pending) == 0 {
		s.mu.Unlock()
		return
	}
	s.delivering = true
	finished := false
	defer func() {
		if !finished { // a listener panicked: let the next caller deliver
			s.mu.Lock()
			s.delivering = false
			s.pending = nil
			s.mu.Unlock()
		}
	}()
	for len(s.pending) > 0 {
		batch, subs := s.pending, s.subs
		s.pending = nil
		s.mu.Unlock()
		for _, c := range batch {
			for _, sub := range subs {
				if sub.active.Load() {
					sub.fn(c)
				}
			}
		}
		s.mu.Lock()
	}
	s.delivering = false
	finished = true
	s.mu.Unlock()
}
