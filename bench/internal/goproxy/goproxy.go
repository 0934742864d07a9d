// Package goproxy is "the obvious Go proxy", a benchmark peer: what a TCP load
// balancer written in Go costs by default. An accept loop, round robin over the
// backends, and per connection two goroutines that io.Copy one direction each
// (splice(2) between *net.TCPConn) and pass a FIN on with CloseWrite.
//
// It is kept deliberately plain: no pools, no health checks, no limits. The only
// concession is the accept back-off of net/http, so that running out of file
// descriptors under the idle load is measured rather than spinning a core.
package goproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Proxy forwards every connection accepted on one listener to its backends in turn.
type Proxy struct {
	ln       *net.TCPListener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
}

// Listen opens a proxy on addr in front of backends.
func Listen(addr string, backends []string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, fmt.Errorf("starting proxy on %s: no backends", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting proxy: %w", err)
	}
	return &Proxy{ln: ln.(*net.TCPListener), backends: backends}, nil
}

// Addr is the proxy's listen address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting; Serve returns once the connections in flight end.
func (p *Proxy) Close() error { return p.ln.Close() }

// Serve accepts until ctx ends, then waits for the connections in flight; the
// caller ends those by ending their clients.
func (p *Proxy) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.ln.Close() })
	defer stop()
	defer p.wg.Wait()
	var delay time.Duration
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accepting on %s: %w", p.Addr(), err)
		}
		delay = 0
		addr := p.backends[(p.next.Add(1)-1)%uint64(len(p.backends))]
		p.wg.Go(func() { proxy(c, addr) })
	}
}

func proxy(client *net.TCPConn, addr string) {
	defer client.Close()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	backend := c.(*net.TCPConn)
	defer backend.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(backend, client)
	}()
	copyHalf(client, backend)
	<-done
}

// copyHalf copies src to dst until EOF, then passes the FIN on.
func copyHalf(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		// A reset on one side resets the other.
		_ = dst.SetLinger(0)
		dst.Close()
		src.Close()
		return
	}
	_ = dst.CloseWrite()
}
