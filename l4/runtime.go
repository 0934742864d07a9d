package l4

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/l4/engine"
)

// Options configure a Runtime. Zero values mean the defaults noted.
type Options struct {
	Log  zerolog.Logger
	Now  func() time.Time // nil means time.Now
	Rand func() uint64    // nil means math/rand/v2's Uint64

	// AccessLog, when set, writes the access log (one line per closed
	// client connection) instead of Log.
	AccessLog *zerolog.Logger

	// Listen opens a service's listener ("tcp", the configured address);
	// nil means the package's Listen. An upgrade sets it to take the
	// listeners the old process handed over. It must return a
	// *net.TCPListener.
	Listen func(network, addr string) (net.Listener, error)
}

// ErrShutdown is returned by Apply after Shutdown.
var ErrShutdown = errors.New("l4: runtime is shut down")

// Runtime owns every service, its listener, backends and health checks.
type Runtime struct {
	log    zerolog.Logger
	access zerolog.Logger // the access log: log, or its own
	now    func() time.Time
	rand   func() uint64
	listen func(network, addr string) (net.Listener, error)

	// ctx ends dials and backoff sleeps when Shutdown stops waiting.
	ctx     context.Context
	cancel  context.CancelFunc
	connWG  sync.WaitGroup // one per client connection
	workers *workerPool    // goroutines kept between connections, for accepting and connecting
	eng     *engine.Engine // moves the bytes of spliced connections; started by the first Apply

	mu        sync.Mutex
	started   bool
	stopped   bool
	order     []*service // configuration order
	services  map[string]*service
	retired   []*service        // removed by a reload, maybe still with connections
	listeners map[string]*front // the addresses listened on, by listenKey
	monitor   *health.Monitor
	pending   *OperatorState // restored before the first Apply
	onOp      []func()
}

// NewRuntime returns a Runtime with no services; Apply starts them.
func NewRuntime(o Options) *Runtime {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Uint64
	}
	if o.Listen == nil {
		o.Listen = Listen
	}
	access := o.Log
	if o.AccessLog != nil {
		access = *o.AccessLog
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		log:       o.Log,
		access:    access,
		listen:    o.Listen,
		now:       o.Now,
		rand:      o.Rand,
		ctx:       ctx,
		cancel:    cancel,
		services:  map[string]*service{},
		listeners: map[string]*front{},
		monitor:   health.NewMonitor(o.Log.With().Str("component", "health").Logger()),
		workers:   newWorkerPool(),
	}
}

// Addr returns the address a service listens on (useful with port 0), or nil
// for an unknown service.
func (r *Runtime) Addr(service string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.services[service]
	if s == nil || s.front == nil {
		return nil
	}
	return s.front.acc.ln.Addr()
}

// Shutdown stops accepting at once and stops health checking, then waits for
// established connections to end until ctx is done. Then it closes (resets)
// what remains, waits for those connections to end, and returns how many it
// closed with ctx's error.
func (r *Runtime) Shutdown(ctx context.Context) (forced int, err error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		r.connWG.Wait()
		return 0, nil
	}
	r.stopped = true
	acceptors := make([]*acceptor, 0, len(r.listeners))
	for _, f := range r.listeners {
		acceptors = append(acceptors, f.acc)
	}
	clear(r.listeners)
	services := append(append([]*service(nil), r.order...), r.retired...)
	var backends []*backend
	for _, s := range services {
		backends = append(backends, s.allBackendsLocked()...)
	}
	r.mu.Unlock()

	for _, a := range acceptors {
		a.close()
	}
	r.monitor.Close()
	for _, b := range backends {
		b.stopTimers()
	}

	done := make(chan struct{})
	go func() {
		r.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		r.closeEngine()
		r.workers.close()
		return 0, nil
	case <-ctx.Done():
	}
	r.cancel()
	for _, s := range services {
		forced += s.abortAll(endShutdown)
	}
	<-done
	r.closeEngine()
	r.workers.close()
	if forced > 0 {
		r.log.Warn().Int("connections", forced).Msg("shutdown deadline reached: closed the remaining connections")
	}
	return forced, ctx.Err()
}

// service returns the named service under r.mu.
func (r *Runtime) service(name string) *service {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.services[name]
}

// startEngine starts the copy engine if it is not running. The caller holds
// r.mu.
func (r *Runtime) startEngineLocked() error {
	if r.eng != nil {
		return nil
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		return fmt.Errorf("starting the copy engine: %w", err)
	}
	r.eng = eng
	return nil
}

// closeEngine stops the copy engine once no connection is left.
func (r *Runtime) closeEngine() {
	r.mu.Lock()
	eng := r.eng
	r.mu.Unlock()
	if eng != nil {
		eng.Close()
	}
}
