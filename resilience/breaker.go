package resilience

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// BreakerState is the state of a circuit breaker. Its numeric value is the one
// exported as the balance_circuit_breaker_state metric.
type BreakerState int32

const (
	Closed   BreakerState = 0 // attempts flow; consecutive failures are counted
	HalfOpen BreakerState = 1 // a few trial attempts decide between closed and open
	Open     BreakerState = 2 // attempts are refused until the open timeout passes
)

// String returns the name used in the admin API: "closed", "half_open" or "open".
func (s BreakerState) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return "BreakerState(" + strconv.Itoa(int(s)) + ")"
}

var (
	// ErrOpen is returned by Allow while the breaker is open.
	ErrOpen = errors.New("resilience: circuit open")
	// ErrTooManyTrials is returned by Allow while the breaker is half-open and
	// all of its trial attempts are in flight.
	ErrTooManyTrials = errors.New("resilience: half-open trial limit reached")
)

// Defaults applied by NewBreaker to zero settings.
const (
	DefaultMaxFailures = 5
	DefaultOpenTimeout = 60 * time.Second
	DefaultHalfOpenMax = 1
)

// maxStreak is the largest failure streak the packed state word can hold.
const maxStreak = 1<<30 - 1

// BreakerSettings configures a Breaker. Zero values mean the defaults shown.
type BreakerSettings struct {
	MaxFailures int              // consecutive failures that open it; 0 means 5
	OpenTimeout time.Duration    // open -> half-open after this; 0 means 60s
	HalfOpenMax int              // trial attempts admitted while half-open; 0 means 1
	Now         func() time.Time // nil means time.Now
	// OnStateChange, if set, is called after every transition, outside any
	// lock, in the order the transitions happened. It may run on the goroutine
	// of a later caller than the one that caused the transition, and it may
	// call the Breaker's methods.
	OnStateChange func(from, to BreakerState, reason string)
}

// Validate reports settings NewBreaker would refuse.
func (s BreakerSettings) Validate() error {
	var errs []error
	if s.MaxFailures < 0 || s.MaxFailures > maxStreak {
		errs = append(errs, fmt.Errorf("resilience: max failures %d out of range [0, %d]", s.MaxFailures, maxStreak))
	}
	if s.OpenTimeout < 0 {
		errs = append(errs, fmt.Errorf("resilience: negative open timeout %s", s.OpenTimeout))
	}
	if s.HalfOpenMax < 0 || s.HalfOpenMax > 1<<31-1 {
		errs = append(errs, fmt.Errorf("resilience: half-open maximum %d out of range", s.HalfOpenMax))
	}
	return errors.Join(errs...)
}

// Breaker is a circuit breaker for one backend, as in SPEC's
// [resilience.circuit_breaker]:
//
//   - closed: every attempt is admitted; MaxFailures consecutive failures open
//     it (a success resets the count);
//   - open: every attempt is refused with ErrOpen until OpenTimeout has passed,
//     then it reads as half-open (evaluated lazily from Now: no timers);
//   - half-open: at most HalfOpenMax trial attempts are admitted, others get
//     ErrTooManyTrials; a trial success closes it, a trial failure opens it again
//     with a fresh timeout.
//
// Every transition starts a new generation; outcomes of attempts admitted in an
// older generation are counted in Stats but do not move the state.
//
// In the closed state Allow, Done and Ready take no lock: state, generation and
// failure streak are packed in one atomic word. The mutex guards transitions,
// half-open trials and the queue of notifications.
type Breaker struct {
	// Read on every call; written only on transitions and failure streaks.
	word      atomic.Uint64 // breakerWord: generation, failure streak, state
	openUntil atomic.Int64  // while open: end of the timeout, in ns since base
	trials    atomic.Int32  // half-open trials admitted in this generation; written under mu

	maxFailures uint32
	halfOpenMax int32
	openTimeout time.Duration
	now         func() time.Time // nil: time.Since(base), monotonic only
	base        time.Time
	onChange    func(from, to BreakerState, reason string)
	openReason  string // "N consecutive failures" (or "1 failure"), built once

	_ [64]byte // keep the counters below off the cache line read above

	requests, successes, failures, rejections, changes atomic.Int64

	mu         sync.Mutex
	pending    []stateChange // transitions not yet given to onChange
	head       int           // next pending entry to deliver
	delivering bool          // a goroutine is running onChange
}

// BreakerStats are a Breaker's counters since it was created.
type BreakerStats struct {
	Requests     int64 // attempts admitted by Allow
	Successes    int64 // outcomes reported as success, stale ones included
	Failures     int64 // outcomes reported as failure, stale ones included
	Rejections   int64 // attempts refused by Allow
	StateChanges int64 // transitions between states
}

// Attempt is an attempt admitted by Allow, to be passed to Done.
// The zero Attempt is never admitted, so Done ignores it.
type Attempt struct {
	gen   uint32
	trial bool
}

// Trial reports whether the attempt was admitted as a half-open trial.
func (a Attempt) Trial() bool { return a.trial }

type stateChange struct {
	from, to BreakerState
	reason   string
}

// Reasons given to OnStateChange.
const (
	reasonOpenTimeout = "open timeout elapsed"
	reasonTrialOK     = "trial succeeded"
	reasonTrialFailed = "trial failed"
	reasonReset       = "reset"
)

// breakerWord packs generation (bits 32-63), consecutive failures (bits 2-31)
// and state (bits 0-1). Generation 0 is never used, so the zero Attempt is stale.
type breakerWord uint64

func packWord(gen, streak uint32, s BreakerState) breakerWord {
	return breakerWord(uint64(gen)<<32 | uint64(streak)<<2 | uint64(s))
}

func (w breakerWord) state() BreakerState { return BreakerState(w & 3) }
func (w breakerWord) streak() uint32      { return uint32(w>>2) & maxStreak }
func (w breakerWord) gen() uint32         { return uint32(w >> 32) }

func (w breakerWord) withStreak(n uint32) breakerWord {
	return packWord(w.gen(), n, w.state())
}

// nextGen returns the generation after g, skipping 0 on wrap-around.
func nextGen(g uint32) uint32 {
	if g++; g == 0 {
		g = 1
	}
	return g
}

// NewBreaker returns a closed breaker. It panics if s.Validate reports an error:
// settings come from validated configuration, so a bad one is a programming error.
func NewBreaker(s BreakerSettings) *Breaker {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	if s.MaxFailures == 0 {
		s.MaxFailures = DefaultMaxFailures
	}
	if s.OpenTimeout == 0 {
		s.OpenTimeout = DefaultOpenTimeout
	}
	if s.HalfOpenMax == 0 {
		s.HalfOpenMax = DefaultHalfOpenMax
	}
	base := time.Now()
	if s.Now != nil {
		base = s.Now()
	}
	b := &Breaker{
		maxFailures: uint32(s.MaxFailures),
		halfOpenMax: int32(s.HalfOpenMax),
		openTimeout: s.OpenTimeout,
		now:         s.Now,
		base:        base,
		onChange:    s.OnStateChange,
		openReason:  "1 failure",
	}
	if s.MaxFailures > 1 {
		b.openReason = strconv.Itoa(s.MaxFailures) + " consecutive failures"
	}
	b.word.Store(uint64(packWord(1, 0, Closed)))
	return b
}

// Allow reserves an attempt. It returns ErrOpen while the breaker is open and
// ErrTooManyTrials while it is half-open with all trials in flight. Every
// admitted attempt must be reported to Done, or a half-open breaker stays
// half-open. A nil *Breaker always allows (breaker disabled).
func (b *Breaker) Allow() (Attempt, error) {
	if b == nil {
		return Attempt{}, nil
	}
	w := breakerWord(b.word.Load())
	if w.state() == Closed {
		b.requests.Add(1)
		return Attempt{gen: w.gen()}, nil
	}
	if w.state() == Open && !b.openExpired() {
		b.rejections.Add(1)
		return Attempt{}, ErrOpen
	}
	return b.allowSlow()
}

// allowSlow admits an attempt under the mutex: a half-open trial, or whatever
// the state has become since the caller looked.
func (b *Breaker) allowSlow() (Attempt, error) {
	b.mu.Lock()
	w := breakerWord(b.word.Load())
	if w.state() == Open {
		if !b.openExpired() {
			b.mu.Unlock()
			b.rejections.Add(1)
			return Attempt{}, ErrOpen
		}
		w = b.transitionLocked(w, HalfOpen, reasonOpenTimeout)
	}
	var (
		a   Attempt
		err error
	)
	switch {
	case w.state() == Closed:
		a = Attempt{gen: w.gen()}
	case b.trials.Load() < b.halfOpenMax:
		b.trials.Add(1)
		a = Attempt{gen: w.gen(), trial: true}
	default:
		err = ErrTooManyTrials
	}
	b.mu.Unlock()
	b.deliver()
	if err != nil {
		b.rejections.Add(1)
		return Attempt{}, err
	}
	b.requests.Add(1)
	return a, nil
}

// Done reports the outcome of an attempt Allow admitted. Outcomes of attempts
// that began before the last state change (older generation) are counted in
// Stats but otherwise ignored. A nil *Breaker ignores everything.
func (b *Breaker) Done(a Attempt, success bool) {
	if b == nil || a.gen == 0 {
		return
	}
	if success {
		b.successes.Add(1)
	} else {
		b.failures.Add(1)
	}
	if a.trial {
		b.doneTrial(a, success)
		return
	}
	for {
		w := breakerWord(b.word.Load())
		if w.gen() != a.gen {
			return // stale: the generation of a closed attempt is a closed one
		}
		var next breakerWord
		switch {
		case success && w.streak() == 0:
			return
		case success:
			next = w.withStreak(0)
		case w.streak()+1 >= b.maxFailures:
			b.openAfterFailure(a)
			return
		default:
			next = w.withStreak(w.streak() + 1)
		}
		if b.word.CompareAndSwap(uint64(w), uint64(next)) {
			return
		}
	}
}

// Cancel ends an attempt Allow admitted without an outcome: the attempt says
// nothing about the backend (it failed for a local reason, such as running out
// of file descriptors). A half-open trial gives its slot back; nothing else
// changes.
func (b *Breaker) Cancel(a Attempt) {
	if b == nil || a.gen == 0 || !a.trial {
		return
	}
	b.mu.Lock()
	if w := breakerWord(b.word.Load()); w.gen() == a.gen && b.trials.Load() > 0 {
		b.trials.Add(-1)
	}
	b.mu.Unlock()
}

// openAfterFailure records a failure that may complete the streak, under the
// mutex because it may open the breaker.
func (b *Breaker) openAfterFailure(a Attempt) {
	b.mu.Lock()
	for {
		w := breakerWord(b.word.Load())
		if w.gen() != a.gen {
			break
		}
		if w.streak()+1 < b.maxFailures { // a success reset the streak meanwhile
			if b.word.CompareAndSwap(uint64(w), uint64(w.withStreak(w.streak()+1))) {
				break
			}
			continue
		}
		if b.tryTransitionLocked(w, Open, b.openReason) {
			break
		}
	}
	b.mu.Unlock()
	b.deliver()
}

// doneTrial settles a half-open trial: success closes, failure reopens.
func (b *Breaker) doneTrial(a Attempt, success bool) {
	b.mu.Lock()
	w := breakerWord(b.word.Load())
	if w.gen() == a.gen {
		if success {
			b.transitionLocked(w, Closed, reasonTrialOK)
		} else {
			b.transitionLocked(w, Open, reasonTrialFailed)
		}
	}
	b.mu.Unlock()
	b.deliver()
}

// Ready reports whether Allow would admit an attempt now, reserving nothing.
// It takes no lock while closed or half-open; while open it reads the clock and,
// once the timeout has passed, makes the lazy move to half-open.
func (b *Breaker) Ready() bool {
	if b == nil {
		return true
	}
	w := breakerWord(b.word.Load())
	if w.state() == Open {
		if !b.openExpired() {
			return false
		}
		w = b.observeOpenTimeout()
	}
	switch w.state() {
	case Closed:
		return true
	case HalfOpen:
		return b.trials.Load() < b.halfOpenMax
	}
	return false
}

// State returns the current state. An open breaker whose timeout has passed
// moves to (and reads as) half-open. A nil *Breaker is always closed.
func (b *Breaker) State() BreakerState {
	if b == nil {
		return Closed
	}
	w := breakerWord(b.word.Load())
	if w.state() == Open && b.openExpired() {
		w = b.observeOpenTimeout()
	}
	return w.state()
}

// observeOpenTimeout makes the lazy open -> half-open move visible and returns
// the word after it.
func (b *Breaker) observeOpenTimeout() breakerWord {
	b.mu.Lock()
	w := breakerWord(b.word.Load())
	if w.state() == Open && b.openExpired() {
		w = b.transitionLocked(w, HalfOpen, reasonOpenTimeout)
	}
	b.mu.Unlock()
	b.deliver()
	return w
}

// Reset forces the breaker closed with a fresh failure count (reason "reset").
// Attempts in flight become stale.
func (b *Breaker) Reset() {
	if b == nil {
		return
	}
	b.mu.Lock()
	for !b.tryTransitionLocked(breakerWord(b.word.Load()), Closed, reasonReset) {
	}
	b.mu.Unlock()
	b.deliver()
}

// Stats returns the counters. A nil *Breaker has none.
func (b *Breaker) Stats() BreakerStats {
	if b == nil {
		return BreakerStats{}
	}
	return BreakerStats{
		Requests:     b.requests.Load(),
		Successes:    b.successes.Load(),
		Failures:     b.failures.Load(),
		Rejections:   b.rejections.Load(),
		StateChanges: b.changes.Load(),
	}
}

// openExpired reports whether the open timeout has passed.
func (b *Breaker) openExpired() bool {
	return int64(b.sinceBase()) >= b.openUntil.Load()
}

// sinceBase returns the time since the breaker was created. Without an
// injected clock it reads only the monotonic clock, half the cost of time.Now.
func (b *Breaker) sinceBase() time.Duration {
	if b.now == nil {
		return time.Since(b.base)
	}
	return b.now().Sub(b.base)
}

// transitionLocked moves from w, which must not be closed (only a closed word
// changes without the mutex), to a new generation in state to.
func (b *Breaker) transitionLocked(w breakerWord, to BreakerState, reason string) breakerWord {
	if !b.tryTransitionLocked(w, to, reason) {
		panic("resilience: breaker word changed under the mutex")
	}
	return breakerWord(b.word.Load())
}

// tryTransitionLocked moves from w to a new generation in state to, unless the
// word is no longer w (a lock-free Done changed the streak of a closed breaker).
// A move to the same state starts a new generation but is not a state change.
func (b *Breaker) tryTransitionLocked(w breakerWord, to BreakerState, reason string) bool {
	if to == Open {
		// Written before the word publishes the open state; only read while open.
		b.openUntil.Store(int64(b.sinceBase() + b.openTimeout))
	}
	if !b.word.CompareAndSwap(uint64(w), uint64(packWord(nextGen(w.gen()), 0, to))) {
		return false
	}
	b.trials.Store(0)
	if from := w.state(); from != to {
		b.changes.Add(1)
		if b.onChange != nil {
			b.pending = append(b.pending, stateChange{from: from, to: to, reason: reason})
		}
	}
	return true
}

// deliver gives queued transitions to onChange, in order, outside the mutex.
// One goroutine delivers at a time; others leave their entries to it, so a
// listener that calls back into the breaker neither deadlocks nor reorders.
func (b *Breaker) deliver() {
	if b.onChange == nil {
		return
	}
	b.mu.Lock()
	if b.delivering || b.head == len(b.pending) {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	finished := false
	defer func() {
		if !finished { // onChange panicked: let a later caller deliver the rest
			b.mu.Lock()
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	for b.head < len(b.pending) {
		c := b.pending[b.head]
		b.head++
		b.mu.Unlock()
		b.onChange(c.from, c.to, c.reason)
		b.mu.Lock()
	}
	b.pending, b.head = b.pending[:0], 0
	b.delivering = false
	finished = true
	b.mu.Unlock()
}
