package resilience

import (
	"errors"
	"fmt"
)

// RetryPolicy bundles what the data path needs for connect retries: how many
// attempts a client connection gets, how long to wait before reusing a backend
// already tried, and the budget that caps retries across connections.
type RetryPolicy struct {
	MaxAttempts int     // attempts in all, >= 1 (less counts as 1: no retry)
	Backoff     Backoff // delay before an attempt that reuses a backend
	Budget      *Budget // nil = unlimited
}

// Validate reports a MaxAttempts below 1 and the Backoff's own errors.
func (p RetryPolicy) Validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("resilience: max attempts %d below 1", p.MaxAttempts))
	}
	if err := p.Backoff.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// AllowRetry reports whether an attempt may follow the attempts already made
// for one client connection: made must be below MaxAttempts, and the budget
// must grant a retry, which this call withdraws. Call it once per retry. The
// first attempt (made 0) is not a retry: it is always allowed and costs nothing.
func (p RetryPolicy) AllowRetry(made int) bool {
	if made < 1 {
		return true
	}
	if made >= p.MaxAttempts {
		return false
	}
	return p.Budget.Withdraw()
}
