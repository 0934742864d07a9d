package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/balancel4/balance-l4/balance"
	"github.com/balancel4/balance-l4/l4/engine"
	"github.com/balancel4/balance-l4/resilience"
)

// connect picks a backend and connects to it. A refused, unreachable or
// timed-out connect moves on at once to an eligible backend not tried yet;
// only when every eligible backend was tried does an attempt reuse one, after
// the backoff. Attempts stop at the policy's max_attempts, and every attempt
// after the first needs a retry from the budget. It returns the backend with
// a connection slot taken (the caller releases it), its socket and the
// number of attempts.
//
// With inline set, connect runs on an engine loop and must not wait: it
// returns errMustWait as soon as an attempt would (a connect that needs the
// handshake, a backoff, a backend named by host name), with what it did in
// k. For a handshake in flight (k.b set) the engine waits, and connect runs
// again on the loop when the wait ends (k.wait.err says how); else connect
// again on a goroutine, with the same k, carries on from there.
// The tries live in the proxyConn: passed to the pickers they escape, and one
// allocation per connection is enough.
func (s *service) connect(ctx context.Context, cfg *serviceConfig, key []byte, k *connecting, inline bool) (*backend, int, int, error) {
	if k.set == nil {
		k.set = s.set.Load()
	}
	t := &k.tries
	if k.b != nil { // an attempt left in flight by the inline start
		b := k.b
		k.b = nil
		fd, err := k.finishDial(b, cfg)
		if done, be, err := s.afterDial(ctx, k, b, fd, err); done {
			return be, fd, k.attempts, err
		}
	}
	for {
		if k.attempts > 0 && !k.granted {
			if !cfg.retry.AllowRetry(k.attempts) {
				return nil, -1, k.attempts, fmt.Errorf("%w after %d attempts: %w", errConnectFailed, k.attempts, k.lastErr)
			}
			k.granted = true
		}
		var b *backend
		var tier, i int
		var reused bool
		if p := k.held; p != nil {
			b, tier, i, reused = p.b, p.tier, p.i, p.reused
			k.held = nil
		} else {
			b, tier, i, reused = k.set.choose(key, t)
		}
		if b == nil {
			if k.attempts == 0 {
				return nil, -1, 0, errNoBackend
			}
			return nil, -1, k.attempts, fmt.Errorf("%w after %d attempts: %w", errConnectFailed, k.attempts, k.lastErr)
		}
		mark := &t.first[tier]
		if reused {
			mark = &t.again[tier]
			if !k.waited {
				if inline {
					k.held = &heldPick{b, tier, i, reused}
					return nil, -1, k.attempts, errMustWait
				}
				if err := resilience.Sleep(ctx, cfg.retry.Backoff.Delay(k.backoffs)); err != nil {
					return nil, -1, k.attempts, fmt.Errorf("%w: %w", errConnectFailed, err)
				}
				k.backoffs++
				k.waited = true
			}
		}
		if inline && b.sockaddr == nil {
			k.held = &heldPick{b, tier, i, reused}
			return nil, -1, k.attempts, errMustWait // Go's dialer waits
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
		k.attempts++
		k.granted, k.waited = false, false
		if k.attempts > 1 {
			s.retries.Add(1)
		}
		k.br, k.att, k.mark, k.index, k.reused, k.tier = br, att, mark, i, reused, tier
		var fd int
		if inline {
			var connected bool
			fd, connected, err = dialIPStart(ctx, b.sockaddr, b.address)
			if err == nil && !connected {
				k.b, k.fd = b, fd // the engine waits for it
				return nil, -1, k.attempts, errMustWait
			}
		} else {
			fd, err = b.dial(ctx, cfg.dialer)
		}
		if done, be, err := s.afterDial(ctx, k, b, fd, err); done {
			return be, fd, k.attempts, err
		}
	}
}

// errMustWait: an inline connect stopped where it would have to wait.
var errMustWait = errors.New("l4: the connect must wait")

// connecting is what connect did so far for one client.
type connecting struct {
	tries    tries
	set      *backendSet
	attempts int
	backoffs int
	granted  bool // a retry was granted for the next attempt
	waited   bool // the backoff before reusing a backend was slept
	lastErr  error

	// The attempt in flight: set from the dial until afterDial.
	b      *backend // set only while an inline start left the handshake in flight
	fd     int
	br     *resilience.Breaker
	att    resilience.Attempt
	mark   *balance.Tried
	index  int
	reused bool
	tier   int

	wait *handshakeWait // from the first handshake an engine loop waited for
	held *heldPick      // a pick an inline connect stopped at, for the goroutine
}

// heldPick is a backend an inline connect picked but could not use yet (a
// backoff, a host name): the goroutine that carries on connects to it
// rather than picking again, which would move the picker twice for one
// attempt (round robin skipped every other backend). Only clients that
// stop there allocate one.
type heldPick struct {
	b      *backend
	tier   int
	i      int
	reused bool
}

// handshakeWait is an engine loop's wait for a backend's handshake
// (connectAndSplice). Apart from connecting, which every client has, as only
// clients of a backend a round trip away need it.
type handshakeWait struct {
	cfg *serviceConfig    // the configuration the client is served with
	err error             // nil: connected
	via engine.Connecting // the wait, then the one that connected fd, for Start
}

// finishDial returns how the handshake an inline start left in flight
// ended, as the engine's wait heard it (connectAndSplice hands every such
// handshake to the engine).
func (k *connecting) finishDial(b *backend, cfg *serviceConfig) (int, error) {
	w := k.wait
	if err := w.err; err != nil {
		w.err = nil
		return -1, waitError(err, cfg.dialer.Timeout, b.address)
	}
	return k.fd, nil
}

// afterDial books the attempt's outcome. done says connect returns (with
// be and err); else the next attempt follows.
func (s *service) afterDial(ctx context.Context, k *connecting, b *backend, fd int, err error) (done bool, be *backend, _ error) {
	// Our own shortage, or a connect canceled by a shutdown, says nothing
	// about the backend.
	local := err != nil && (isLocalDialError(err) || errors.Is(err, context.Canceled))
	if local {
		k.br.Cancel(k.att)
	} else {
		k.br.Done(k.att, err == nil)
	}
	if err == nil {
		b.total.Add(1)
		return true, b, nil
	}
	b.release()
	if !local {
		b.failed.Add(1)
		s.recordPassive(b, false)
	}
	if ok, n := s.attemptLog.allow(time.Now()); ok {
		s.r.log.Warn().Err(err).Str("service", s.name).Str("backend", b.name).Int("attempt", k.attempts).
			Int64("suppressed", n).Msg("connect attempt failed")
	}
	k.lastErr = err
	k.mark.Add(k.index)
	if k.reused {
		// The next attempt may reuse any tried backend again, this one
		// too (a single backend gets all its attempts): max_attempts, not
		// the number of backends, bounds the loop.
		k.tries.again[k.tier].Reset()
	}
	if errors.Is(err, context.Canceled) {
		return true, nil, fmt.Errorf("%w: %w", errConnectFailed, err)
	}
	return false, nil, nil
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
