package load

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// PingPongResult is what a request/response load achieved.
type PingPongResult struct {
	Requests int64 // round trips completed
	Elapsed  time.Duration
	Latency  *Histogram // one sample per round trip
	Errors   ErrorCounts
}

// PerSecond is the rate of round trips.
func (r PingPongResult) PerSecond() float64 { return perSecond(r.Requests, r.Elapsed) }

// PingPong opens conns persistent connections to an echo server at addr, then on
// each, for d, sends a MessageSize message and waits for its echo, one at a time.
// A connection that fails is counted and not used again.
func PingPong(ctx context.Context, addr string, conns int, d time.Duration) (PingPongResult, error) {
	cs, err := dialAll(ctx, addr, conns)
	if err != nil {
		return PingPongResult{}, fmt.Errorf("starting ping-pong load: %w", err)
	}
	defer closeAll(cs)
	stop := context.AfterFunc(ctx, func() { closeAll(cs) })
	defer stop()

	hists := make([]Histogram, len(cs))
	counts := make([]int64, len(cs))
	errs := make([]error, len(cs))
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{'p'}, MessageSize)
			reply := make([]byte, MessageSize)
			if err := c.SetDeadline(end.Add(opTimeout)); err != nil {
				errs[i] = fmt.Errorf("setting deadline: %w", err)
				return
			}
			for now := time.Now(); now.Before(end); {
				if err := exchange(c, msg, reply); err != nil {
					errs[i] = err
					return
				}
				t := time.Now()
				hists[i].Record(t.Sub(now))
				counts[i]++
				now = t
			}
		})
	}
	wg.Wait()

	r := PingPongResult{Elapsed: time.Since(start), Latency: &Histogram{}, Errors: ErrorCounts{}}
	for i := range cs {
		r.Requests += counts[i]
		r.Latency.Merge(&hists[i])
		if errs[i] != nil {
			r.Errors.Add(errs[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("running ping-pong load: %w", err)
	}
	return r, nil
}
