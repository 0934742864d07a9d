package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// replyTimeout bounds every wait for a reply once a load's time is up.
const replyTimeout = 30 * time.Second

// ThroughputResult is what a bulk stream delivered.
type ThroughputResult struct {
	Bytes   int64         // bytes the sink received, as it counted them
	Elapsed time.Duration // from the first write to the last sink reply
	Errors  ErrorCounts
}

// Gbps is the delivered rate in gigabits per second.
func (r ThroughputResult) Gbps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9
}

// Throughput streams zeros on conns connections to a sink (backend.Sink) at addr
// for d, then half-closes each and reads the sink's count of bytes received.
func Throughput(ctx context.Context, addr string, conns int, d time.Duration) (ThroughputResult, error) {
	cs, err := dialAll(ctx, addr, conns)
	if err != nil {
		return ThroughputResult{}, fmt.Errorf("starting throughput load: %w", err)
	}
	defer closeAll(cs)
	stop := context.AfterFunc(ctx, func() { closeAll(cs) })
	defer stop()

	type outcome struct {
		bytes int64
		end   time.Time
		err   error
	}
	outcomes := make([]outcome, len(cs))
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			n, err := stream(c, end)
			outcomes[i] = outcome{bytes: n, end: time.Now(), err: err}
		})
	}
	wg.Wait()

	r := ThroughputResult{Errors: ErrorCounts{}}
	last := start
	for _, o := range outcomes {
		if o.err != nil {
			r.Errors.Add(o.err)
			continue
		}
		r.Bytes += o.bytes
		if o.end.After(last) {
			last = o.end
		}
	}
	r.Elapsed = last.Sub(start)
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("running throughput load: %w", err)
	}
	return r, nil
}

// stream writes until end, half-closes, and returns the sink's byte count.
func stream(c *net.TCPConn, end time.Time) (int64, error) {
	buf := make([]byte, 256<<10)
	if err := c.SetWriteDeadline(end); err != nil {
		return 0, fmt.Errorf("setting write deadline: %w", err)
	}
	for {
		_, err := c.Write(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("streaming: %w", err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, fmt.Errorf("half-closing: %w", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(replyTimeout)); err != nil {
		return 0, fmt.Errorf("setting read deadline: %w", err)
	}
	var reply [8]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return 0, fmt.Errorf("reading the sink's count: %w", err)
	}
	return int64(binary.BigEndian.Uint64(reply[:])), nil
}

// dialAll opens n connections to addr, or none.
func dialAll(ctx context.Context, addr string, n int) ([]*net.TCPConn, error) {
	if n < 1 {
		return nil, fmt.Errorf("want at least one connection, got %d", n)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	cs := make([]*net.TCPConn, 0, n)
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			closeAll(cs)
			return nil, fmt.Errorf("dialing %s: %w", addr, err)
		}
		cs = append(cs, c.(*net.TCPConn))
	}
	return cs, nil
}

func closeAll(cs []*net.TCPConn) {
	for _, c := range cs {
		c.Close()
	}
}
