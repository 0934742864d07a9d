package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Addrs are the addresses of a set of backends, as a backend child process
// reports them on its first line of output (JSON).
type Addrs struct {
	Echo []string `json:"echo"`
	Sink []string `json:"sink"`
}

// Run starts echo and sink servers on free 127.0.0.1 ports, hands their addresses
// to ready, and serves until ctx ends.
func Run(ctx context.Context, echo, sink int, ready func(Addrs)) error {
	if echo < 0 || sink < 0 || echo+sink == 0 {
		return fmt.Errorf("starting backends: want at least one server, got %d echo and %d sink", echo, sink)
	}
	var servers []*Server
	var addrs Addrs
	for i := range echo + sink {
		h, list := Handler(Echo), &addrs.Echo
		if i >= echo {
			h, list = Sink, &addrs.Sink
		}
		s, err := Listen("127.0.0.1:0", h)
		if err != nil {
			for _, s := range servers {
				s.ln.Close()
			}
			return fmt.Errorf("starting backends: %w", err)
		}
		servers = append(servers, s)
		*list = append(*list, s.Addr())
	}

	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.Serve(ctx) })
	}
	ready(addrs)
	wg.Wait()
	return errors.Join(errs...)
}
