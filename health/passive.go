package health

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of passive checks (SPEC §2 [health_check.passive_checks]).
const (
	DefaultPassiveConsecutiveFailures = 5
	DefaultPassiveWindow              = time.Minute
)

// passiveBuckets is how many slices the sliding window has: the window
// slides by Window/passiveBuckets, so it covers between 90% and 100% of
// Window.
const passiveBuckets = 10

// PassiveSettings configures a Passive. The zero value trips on 5
// consecutive failures and has no error-rate verdict.
type PassiveSettings struct {
	// ConsecutiveFailures trips after this many failed attempts in a row;
	// < 1 means 5.
	ConsecutiveFailures int
	// ErrorRate trips when failed/attempted within Window reaches it. 0 (or
	// less) turns the rate verdict off: "trip on any failure" is already
	// ConsecutiveFailures = 1. Above 1 it never trips.
	ErrorRate float64
	// MinRequests: no rate verdict below this many attempts within Window.
	MinRequests int
	// Window is the span the error rate is measured over; <= 0 means 1m.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Passive judges a backend from real connection attempts: a connect failure
// or timeout, or a reset before the backend sent a byte, is a failure. It is
// safe for concurrent use; Record takes a per-backend mutex and allocates
// nothing unless it trips. A nil *Passive records nothing and never trips, so
// callers need no "if enabled".
type Passive struct {
	threshold   int
	rate        float64
	minRequests int
	window      time.Duration
	width       time.Duration // of one bucket
	now         func() time.Time
	start       time.Time

	mu       sync.Mutex
	failures int // consecutive
	buckets  [passiveBuckets]passiveBucket
}

type passiveBucket struct {
	epoch              int64 // which Window/passiveBuckets slice since start
	attempts, failures int
}

// NewPassive returns a Passive with the settings' defaults applied.
func NewPassive(s PassiveSettings) *Passive {
	p := &Passive{
		threshold:   s.ConsecutiveFailures,
		rate:        s.ErrorRate,
		minRequests: s.MinRequests,
		window:      s.Window,
		now:         s.Now,
	}
	if p.threshold < 1 {
		p.threshold = DefaultPassiveConsecutiveFailures
	}
	if p.window <= 0 {
		p.window = DefaultPassiveWindow
	}
	p.width = p.window / passiveBuckets
	if p.width <= 0 {
		p.width = 1
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.start = p.now()
	return p
}

// Record reports one connection attempt's outcome. trip is true for every
// failure that leaves a threshold crossed (so a caller that missed one trip
// sees the next), and reason says which: "5 consecutive connection failures"
// or "error rate 0.62 >= 0.50 over 13 attempts in 1m0s". A success never
// trips. Call Reset when the backend comes back, or old failures keep
// counting against it until they leave the window.
func (p *Passive) Record(ok bool) (trip bool, reason string) {
	if p == nil {
		return false, ""
	}
	epoch := p.epoch()
	p.mu.Lock()
	b := &p.buckets[bucketIndex(epoch)]
	if b.epoch != epoch {
		*b = passiveBucket{epoch: epoch}
	}
	b.attempts++
	if ok {
		p.failures = 0
		p.mu.Unlock()
		return false, ""
	}
	b.failures++
	p.failures++
	streak := p.failures
	attempts, failures := p.sumLocked(epoch)
	p.mu.Unlock()

	if streak >= p.threshold {
		return true, fmt.Sprintf("%d consecutive connection failures", streak)
	}
	if p.rate > 0 && attempts >= p.minRequests {
		if rate := float64(failures) / float64(attempts); rate >= p.rate {
			return true, fmt.Sprintf("error rate %.2f >= %.2f over %d attempts in %s",
				rate, p.rate, attempts, p.window)
		}
	}
	return false, ""
}

// ErrorRate is failed/attempted within the window, 0 when nothing was attempted.
func (p *Passive) ErrorRate() float64 {
	if p == nil {
		return 0
	}
	epoch := p.epoch()
	p.mu.Lock()
	attempts, failures := p.sumLocked(epoch)
	p.mu.Unlock()
	if attempts == 0 {
		return 0
	}
	return float64(failures) / float64(attempts)
}

// Reset forgets every outcome, after the backend comes back.
func (p *Passive) Reset() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.failures = 0
	p.buckets = [passiveBuckets]passiveBucket{}
	p.mu.Unlock()
}

func (p *Passive) epoch() int64 {
	d := p.now().Sub(p.start)
	e := int64(d / p.width)
	if d < 0 {
		e-- // floor, so a clock that steps back lands in an older slice
	}
	return e
}

func bucketIndex(epoch int64) int {
	i := int(epoch % passiveBuckets)
	if i < 0 {
		i += passiveBuckets
	}
	return i
}

// sumLocked adds up the buckets of the window that ends in epoch.
func (p *Passive) sumLocked(epoch int64) (attempts, failures int) {
	for i := range p.buckets {
		b := &p.buckets[i]
		if age := epoch - b.epoch; age >= 0 && age < passiveBuckets {
			attempts += b.attempts
			failures += b.failures
		}
	}
	return attempts, failures
}
