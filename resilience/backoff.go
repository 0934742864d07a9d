package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults applied by Backoff.Delay to zero fields.
const (
	DefaultBackoffInitial    = 100 * time.Millisecond
	DefaultBackoffMax        = 10 * time.Second
	DefaultBackoffMultiplier = 2.0
)

// Backoff computes exponential delays with jitter, so that retries against the
// same backend spread out instead of arriving in lockstep. Zero fields mean the
// defaults shown; the value is safe to copy and to use concurrently if Rand is.
type Backoff struct {
	Initial    time.Duration  // 0 means 100ms
	Max        time.Duration  // 0 means 10s
	Multiplier float64        // < 1 means 2
	Jitter     float64        // fraction, 0..1: the delay is scaled by a factor in [1-j, 1+j]
	Rand       func() float64 // in [0,1); nil means math/rand/v2.Float64
}

// Validate reports fields Delay would have to correct: a negative duration,
// Max below Initial, a jitter outside [0,1], a multiplier that is not a number.
func (b Backoff) Validate() error {
	var errs []error
	if b.Initial < 0 {
		errs = append(errs, fmt.Errorf("resilience: negative backoff initial delay %s", b.Initial))
	}
	if b.Max < 0 {
		errs = append(errs, fmt.Errorf("resilience: negative backoff maximum delay %s", b.Max))
	}
	if b.Initial > 0 && b.Max > 0 && b.Max < b.Initial {
		errs = append(errs, fmt.Errorf("resilience: backoff maximum delay %s below initial delay %s", b.Max, b.Initial))
	}
	if math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0) {
		errs = append(errs, fmt.Errorf("resilience: backoff multiplier %v is not a finite number", b.Multiplier))
	}
	if !(b.Jitter >= 0 && b.Jitter <= 1) {
		errs = append(errs, fmt.Errorf("resilience: backoff jitter %v outside [0, 1]", b.Jitter))
	}
	return errors.Join(errs...)
}

// Delay returns the wait before the n-th backoff (n = 0 is the first):
// Initial × Multiplierⁿ, capped at Max, then scaled by a jitter factor
// 1 - Jitter + 2 × Jitter × Rand(), and capped at Max again, so a delay never
// exceeds Max (at the cap, jitter only shortens it). For example Initial 100ms,
// Multiplier 2, Max 1s, no jitter give 100ms, 200ms, 400ms, 800ms, 1s, 1s, ...
//
// Delay tolerates fields Validate reports: a negative n counts as 0, negative
// durations and a NaN multiplier take the defaults, Max below Initial caps at
// Max, and a jitter outside [0,1] is clamped into it.
func (b Backoff) Delay(n int) time.Duration {
	initial, limit, mult := b.Initial, b.Max, b.Multiplier
	if initial <= 0 {
		initial = DefaultBackoffInitial
	}
	if limit <= 0 {
		limit = DefaultBackoffMax
	}
	if !(mult >= 1) { // also NaN
		mult = DefaultBackoffMultiplier
	}
	n = max(n, 0)
	d := float64(initial) * math.Pow(mult, float64(n)) // +Inf on overflow, capped below
	d = min(d, float64(limit))
	if j := min(max(b.Jitter, 0), 1); j > 0 { // NaN jitter fails j > 0
		r := b.Rand
		if r == nil {
			r = rand.Float64
		}
		f := r()
		if !(f >= 0) { // also NaN from a broken source
			f = 0
		}
		d *= 1 - j + 2*j*min(f, 1)
		d = min(d, float64(limit))
	}
	return time.Duration(d)
}

// Sleep waits d or until ctx is done, and returns ctx.Err() if ctx ended first.
// A d of zero or less returns at once (with ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
