package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// MessageSize is the size of every small message: the connection-rate request,
// each ping-pong and each idle connection's ping.
const MessageSize = 64

// opTimeout bounds one connect, or one request and its reply.
const opTimeout = 2 * time.Second

// ConnRateResult is what a connection-rate load achieved.
type ConnRateResult struct {
	Conns   int64 // connections that completed connect, request, reply and close
	Elapsed time.Duration
	Errors  ErrorCounts
}

// PerSecond is the rate of completed connections.
func (r ConnRateResult) PerSecond() float64 { return perSecond(r.Conns, r.Elapsed) }

// ConnRate runs workers that each loop for d: connect to an echo server at addr,
// send one message, read the echo, close.
func ConnRate(ctx context.Context, addr string, workers int, d time.Duration) (ConnRateResult, error) {
	if workers < 1 {
		return ConnRateResult{}, fmt.Errorf("starting connection-rate load: want at least one worker, got %d", workers)
	}
	counts := make([]int64, workers)
	errs := make([]ErrorCounts, workers)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		errs[i] = ErrorCounts{}
		wg.Go(func() { counts[i] = connLoop(ctx, addr, end, errs[i]) })
	}
	wg.Wait()

	r := ConnRateResult{Elapsed: time.Since(start), Errors: ErrorCounts{}}
	for i := range workers {
		r.Conns += counts[i]
		r.Errors.Merge(errs[i])
	}
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("running connection-rate load: %w", err)
	}
	return r, nil
}

func connLoop(ctx context.Context, addr string, end time.Time, errs ErrorCounts) int64 {
	msg := bytes.Repeat([]byte{'c'}, MessageSize)
	reply := make([]byte, MessageSize)
	d := net.Dialer{Timeout: opTimeout}
	var n int64
	for ctx.Err() == nil && time.Now().Before(end) {
		if err := oneConn(ctx, &d, addr, msg, reply); err != nil {
			errs.Add(err)
			continue
		}
		n++
	}
	return n
}

func oneConn(ctx context.Context, d *net.Dialer, addr string, msg, reply []byte) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dialing %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(opTimeout)); err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	return exchange(c, msg, reply)
}

// exchange sends msg and reads its echo into reply.
func exchange(c net.Conn, msg, reply []byte) error {
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	if _, err := io.ReadFull(c, reply); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(msg, reply) {
		return errCorrupt
	}
	return nil
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
