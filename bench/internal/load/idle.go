package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Idle bounds: openers in flight, failures before giving up, and total time.
const (
	idleOpeners     = 32
	idleMaxFailures = 32
	idleMaxTime     = 90 * time.Second
)

// IdleSet is a set of connections held open with no traffic.
type IdleSet struct {
	conns  []*net.TCPConn
	Errors ErrorCounts // failures while opening (the set stops after a few)
}

// Held is the number of connections open.
func (s *IdleSet) Held() int { return len(s.conns) }

// Close closes every connection.
func (s *IdleSet) Close() { closeAll(s.conns) }

// OpenIdle opens up to k connections to an echo server at addr, sends one message
// on each and reads its echo, and holds them. It stops early, keeping what it
// has, after a few failures (a proxy out of file descriptors stops answering).
// The error is set only when ctx ends; the set is always valid and must be closed.
func OpenIdle(ctx context.Context, addr string, k int) (*IdleSet, error) {
	set := &IdleSet{Errors: ErrorCounts{}}
	if k < 1 {
		return set, fmt.Errorf("opening idle connections: want at least one, got %d", k)
	}
	ctx, cancel := context.WithTimeout(ctx, idleMaxTime)
	defer cancel()

	var (
		next     atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range min(idleOpeners, k) {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{'i'}, MessageSize)
			reply := make([]byte, MessageSize)
			d := net.Dialer{Timeout: opTimeout}
			for next.Add(1) <= int64(k) && failures.Load() < idleMaxFailures && ctx.Err() == nil {
				c, err := openOne(ctx, &d, addr, msg, reply)
				mu.Lock()
				if err != nil {
					set.Errors.Add(err)
				} else {
					set.conns = append(set.conns, c)
				}
				mu.Unlock()
				if err != nil {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && len(set.conns) < k {
		return set, fmt.Errorf("opening idle connections to %s: held %d of %d: %w", addr, len(set.conns), k, err)
	}
	return set, nil
}

func openOne(ctx context.Context, d *net.Dialer, addr string, msg, reply []byte) (*net.TCPConn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetDeadline(time.Now().Add(opTimeout)); err != nil {
		tc.Close()
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	if err := exchange(tc, msg, reply); err != nil {
		tc.Close()
		return nil, err
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return nil, fmt.Errorf("clearing deadline: %w", err)
	}
	return tc, nil
}
