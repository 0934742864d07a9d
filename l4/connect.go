package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/balancel4/balance-l4/resilience"
)

// connect picks a backend and connects to it. A refused, unreachable or
// timed-out connect moves on at once to an eligible backend not tried yet;
// only when every eligible backend was tried does an attempt reuse one, after
// the backoff. Attempts stop at the policy's max_attempts, and every attempt
// after the first needs a retry from the budget. It returns the backend with
// a connection slot taken (the caller releases it) and the number of attempts.
// t lives in the proxyConn: passed to the pickers it escapes, and one
// allocation per connection is enough.
func (s *service) connect(ctx context.Context, cfg *serviceConfig, key []byte, t *tries) (*backend, int, int, error) {
	set := s.set.Load()
	attempts, backoffs := 0, 0
	granted, waited := false, false
	var lastErr error
	for {
		if attempts > 0 && !granted {
			if !cfg.retry.AllowRetry(attempts) {
				return nil, -1, attempts, fmt.Errorf("%w after %d attempts: %w", errConnectFailed, attempts, lastErr)
			}
			granted = true
		}
		b, tier, i, reused := set.choose(key, t)
		if b == nil {
			if attempts == 0 {
				return nil, -1, 0, errNoBackend
			}
			return nil, -1, attempts, fmt.Errorf("%w after %d attempts: %w", errConnectFailed, attempts, lastErr)
		}
		mark := &t.first[tier]
		if reused {
			mark = &t.again[tier]
			if !waited {
				if err := resilience.Sleep(ctx, cfg.retry.Backoff.Delay(backoffs)); err != nil {
					return nil, -1, attempts, fmt.Errorf("%w: %w", errConnectFailed, err)
				}
				backoffs++
				waited = true
			}
		}
		if !b.acquire() {
			mark.Add(i)
			continue
		}
		br := b.breaker.Load()
		att, err := br.Allow()
		if err != nil {
			b.release()
			mark.Add(i)
			continue
		}
		attempts++
		granted, waited = false, false
		if attempts > 1 {
			s.retries.Add(1)
		}
		conn, err := b.dial(ctx, cfg.dialer)
		local := err != nil && isLocalDialError(err)
		if local {
			br.Cancel(att) // our own shortage says nothing about the backend
		} else {
			br.Done(att, err == nil)
		}
		if err == nil {
			b.total.Add(1)
			return b, conn, attempts, nil
		}
		b.release()
		if !local {
			b.failed.Add(1)
			s.recordPassive(b, false)
		}
		if ok, n := s.attemptLog.allow(time.Now()); ok {
			s.r.log.Warn().Err(err).Str("service", s.name).Str("backend", b.name).Int("attempt", attempts).
				Int64("suppressed", n).Msg("connect attempt failed")
		}
		lastErr = err
		mark.Add(i)
		if reused {
			// The next attempt may reuse any tried backend again, this one
			// too (a single backend gets all its attempts): max_attempts, not
			// the number of backends, bounds the loop.
			t.again[tier].Reset()
		}
		if errors.Is(err, context.Canceled) {
			return nil, -1, attempts, fmt.Errorf("%w: %w", errConnectFailed, err)
		}
	}
}

// dial connects to the backend with the service's connect timeout: raw for
// an IP address (dial.go), with Go's dialer for a host name. It returns the
// socket's descriptor, out of Go's netpoller.
func (b *backend) dial(ctx context.Context, d *net.Dialer) (int, error) {
	if b.sockaddr != nil {
		return dialIP(ctx, b.sockaddr, d.Timeout, b.address)
	}
	conn, err := dialBackend(ctx, d, b.address)
	if err != nil {
		return -1, err
	}
	fd, err := detach(conn)
	if err != nil {
		return -1, fmt.Errorf("dialing backend %s: %w", b.address, err)
	}
	return fd, nil
}

// dialBackend connects to addr with Go's dialer.
func dialBackend(ctx context.Context, d *net.Dialer, addr string) (*net.TCPConn, error) {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing backend %s: %w", addr, err)
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("dialing backend %s: not a TCP connection", addr)
	}
	return tc, nil
}

// isLocalDialError reports whether a dial failed for want of a local resource
// (file descriptors, buffers, ephemeral ports) rather than because of the
// backend. Such a failure must not count against the backend: under fd
// exhaustion every healthy backend would otherwise be taken out of rotation.
func isLocalDialError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}
