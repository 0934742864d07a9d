// Package resilience holds the policies that keep a load balancer from making a
// bad situation worse: a circuit breaker that stops sending connections to a
// backend that keeps failing, exponential backoff with jitter so retries against
// one backend do not arrive in lockstep, and a retry budget that caps retries to
// a share of real traffic so that an outage does not multiply the load on the
// backends that are still up.
//
// The package is pure policy. It does no I/O, starts no goroutines and knows
// nothing about TCP or configuration files; time and randomness are injected
// (BreakerSettings.Now, Backoff.Rand, NewBudget's now) so that every decision can
// be tested exactly. The data path wraps each connect attempt with it.
//
// A nil *Breaker and a nil *Budget are valid and allow everything, so callers
// with the feature disabled need no special case.
//
// Typical use around a dial:
//
//	attempt, err := breaker.Allow()
//	if err != nil {
//		return err // ErrOpen or ErrTooManyTrials: try another backend
//	}
//	conn, err := dialer.DialContext(ctx, "tcp", addr)
//	breaker.Done(attempt, err == nil)
//
// and between attempts:
//
//	if !policy.AllowRetry(attempts) {
//		return errGaveUp
//	}
//	if sameBackend {
//		err = resilience.Sleep(ctx, policy.Backoff.Delay(reuses))
//	}
package resilience
