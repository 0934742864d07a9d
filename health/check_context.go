package health

import (
	"context"
	"slices"
	"sync"
	"time"
)

// checkContext is the context of one check: cancelled at its deadline or by
// the monitor. Unlike context.WithTimeout it arms no timer until something
// waits on it (Done, or a context or context.AfterFunc derived from it): a
// check that never waits, as a connect on loopback, costs one allocation
// and no timer. At 10 000 checks a second, WithTimeout's allocations and the
// insertion and removal of its timer in the runtime's heap showed in the
// profile.
type checkContext struct {
	deadline time.Time

	mu     sync.Mutex
	done   chan struct{} // made when first asked for
	timer  *time.Timer   // fires at the deadline, once done is made
	err    error
	afters []*func() // registered by AfterFunc, not yet called
}

var _ interface {
	context.Context
	AfterFunc(func()) func() bool // so derived contexts need no goroutine
} = (*checkContext)(nil)

func newCheckContext(timeout time.Duration) *checkContext {
	return &checkContext{deadline: time.Now().Add(timeout)}
}

func (c *checkContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *checkContext) Value(any) any { return nil }

func (c *checkContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked()
	return c.done
}

func (c *checkContext) Err() error {
	c.mu.Lock()
	if c.err != nil || time.Now().Before(c.deadline) {
		defer c.mu.Unlock()
		return c.err
	}
	c.endAndUnlock(context.DeadlineExceeded)
	return context.DeadlineExceeded
}

// AfterFunc calls f (in the goroutine that ends the context) once it ends,
// unless stop is called first; stop says whether it prevented the call.
// The context package uses it for contexts derived from this one.
func (c *checkContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.armLocked()
	entry := &f
	c.afters = append(c.afters, entry)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.afters, entry)
		if i < 0 {
			return false
		}
		c.afters = slices.Delete(c.afters, i, i+1)
		return true
	}
}

// cancel ends the context with err, unless it has ended already.
func (c *checkContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.endAndUnlock(err)
}

// armLocked makes done and the deadline's timer.
func (c *checkContext) armLocked() {
	if c.done != nil {
		return
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
}

// endAndUnlock records err, closes done, unlocks and calls the functions
// registered by AfterFunc.
func (c *checkContext) endAndUnlock(err error) {
	c.err = err
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.done != nil {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	c.mu.Unlock()
	for _, f := range afters {
		(*f)()
	}
}
