// Package testclock is the settable clock tests inject where the code under
// test takes a Now func, so timing logic is tested without sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is a goroutine-safe clock that moves only when told to.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now is the clock's time; pass it where a Now func is wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
