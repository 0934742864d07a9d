package resilience

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// BudgetWindow is the sliding window over which a Budget counts, kept in
// one-second buckets.
const BudgetWindow = budgetBuckets * time.Second

const (
	budgetBuckets = 10
	micro         = 1_000_000 // fixed-point unit: the ratio is kept to a millionth
)

// Budget limits retries to a share of client connections, plus a floor per
// second, like Finagle's RetryBudget and Envoy's retry budget: during an outage
// retries cannot multiply the load, yet a quiet service may still retry.
//
// A Withdraw succeeds while, over the window (the current second and the 9
// before it, so between 9 and 10 seconds),
//
//	retries + 1 <= ratio × deposits + minPerSecond × 10
//
// where deposits and retries are the Deposit calls and successful Withdraw
// calls in the window. The floor is a reserve for the whole window: with no
// connections, minPerSecond × 10 retries may be taken at once. The ratio is
// applied in millionths, so the arithmetic is exact.
//
// A nil *Budget allows every retry. Methods are safe for concurrent use; each
// takes a short per-budget mutex and does not allocate.
type Budget struct {
	ratioMicro   int64            // ratio in millionths
	reserveMicro int64            // minPerSecond × window seconds, in millionths
	now          func() time.Time // nil: time.Since(base), monotonic only
	base         time.Time

	mu       sync.Mutex
	buckets  [budgetBuckets]budgetBucket
	newest   int64 // seconds since base of the newest bucket
	deposits int64 // sum over buckets
	retries  int64 // sum over buckets
	stats    BudgetStats
}

type budgetBucket struct{ deposits, retries int64 }

// BudgetStats are a Budget's counters since it was created.
type BudgetStats struct {
	Deposits  int64 // client connections deposited
	Retries   int64 // retries granted
	Exhausted int64 // retries refused
}

// NewBudget returns a budget allowing retries of ratio × client connections plus
// minPerSecond per second over BudgetWindow. A nil now means time.Now. It panics
// if ratio is outside [0, 1] or minPerSecond is negative: configuration
// validation refuses those, so they are programming errors.
func NewBudget(ratio float64, minPerSecond int, now func() time.Time) *Budget {
	if !(ratio >= 0 && ratio <= 1) {
		panic(fmt.Sprintf("resilience: retry budget ratio %v outside [0, 1]", ratio))
	}
	if minPerSecond < 0 || int64(minPerSecond) > math.MaxInt64/micro/budgetBuckets {
		panic(fmt.Sprintf("resilience: retry budget floor %d per second out of range", minPerSecond))
	}
	base := time.Now()
	if now != nil {
		base = now()
	}
	return &Budget{
		ratioMicro:   int64(math.Round(ratio * micro)),
		reserveMicro: int64(minPerSecond) * budgetBuckets * micro,
		now:          now,
		base:         base,
	}
}

// Deposit records one client connection.
func (b *Budget) Deposit() {
	if b == nil {
		return
	}
	sec := b.second()
	b.mu.Lock()
	cur := b.advanceLocked(sec)
	cur.deposits++
	b.deposits++
	b.stats.Deposits++
	b.mu.Unlock()
}

// Withdraw takes one retry and reports whether the budget allowed it.
func (b *Budget) Withdraw() bool {
	if b == nil {
		return true
	}
	sec := b.second()
	b.mu.Lock()
	cur := b.advanceLocked(sec)
	ok := b.ratioMicro*b.deposits+b.reserveMicro >= (b.retries+1)*micro
	if ok {
		cur.retries++
		b.retries++
		b.stats.Retries++
	} else {
		b.stats.Exhausted++
	}
	b.mu.Unlock()
	return ok
}

// Stats returns the counters. A nil *Budget has none.
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// second returns the number of whole seconds since the budget was created,
// read before taking the mutex to keep the critical section short.
func (b *Budget) second() int64 {
	if b.now == nil {
		return int64(time.Since(b.base) / time.Second) // monotonic only: half the cost of time.Now
	}
	return int64(b.now().Sub(b.base) / time.Second)
}

// advanceLocked moves the window to second sec, dropping the buckets that left
// it, and returns the current bucket. A second older than the newest bucket
// (a clock that went back, or a caller that read the clock just before another)
// counts in the newest bucket.
func (b *Budget) advanceLocked(sec int64) *budgetBucket {
	if sec > b.newest {
		if sec-b.newest >= budgetBuckets {
			b.buckets = [budgetBuckets]budgetBucket{}
			b.deposits, b.retries = 0, 0
		} else {
			for s := b.newest + 1; s <= sec; s++ {
				old := &b.buckets[s%budgetBuckets]
				b.deposits -= old.deposits
				b.retries -= old.retries
				*old = budgetBucket{}
			}
		}
		b.newest = sec
	}
	return &b.buckets[b.newest%budgetBuckets]
}
