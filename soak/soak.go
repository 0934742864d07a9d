// Package soak is balance-l4's chaos soak and the home of its binary-level
// fault tests. It tests the product from the outside: the built binary, its
// TOML file, its admin API and its signals, with echo backends and clients
// that the soak runs itself on 127.0.0.1.
//
// Unit tests show that each part does what it should alone; a load balancer
// fails in production where the parts meet under load: a reload racing a
// drain, a backend dying while its connections are spliced, an operator's
// script sending nonsense. The soak runs dozens of clients that check every
// byte they get back while a chaos loop kills, stalls, drains, disconnects,
// reweighs and reloads, and then classifies every client connection by what
// broke it. A connection may be broken only by a fault injected on its own
// backend; nothing may be corrupted, refused while a backend is healthy, or
// leak.
//
// Typical use (see README.md; the test builds the binary itself):
//
//	s, err := soak.Run(soak.Options{Binary: "/tmp/balance-l4", Dir: dir, Duration: time.Minute})
//	if err != nil { ... }          // the harness could not run
//	fmt.Print(s)                   // the summary
//	if f := s.Failures(); len(f) > 0 { ... }
package soak

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// serviceName is the soak's one service.
const serviceName = "soak"

// Options configure Run. Zero values mean the defaults given.
type Options struct {
	Binary     string        // a built balance-l4; required
	Dir        string        // for the configuration and state files; required
	Duration   time.Duration // of the chaos phase; 0 = 20s
	Clients    int           // concurrent payload clients; 0 = 24
	LongLived  int           // concurrent long-lived pinging connections; 0 = 12
	Backends   int           // echo backends, the anchor included; 0 = 5
	MaxPayload int           // largest payload in bytes; 0 = 4 MiB (the smallest is 1 KiB)
	Seed       uint64        // 0 = from the clock; printed in the summary
	Progress   io.Writer     // one line per phase and chaos action; nil = discard
	Output     io.Writer     // a copy of balance-l4's whole output; nil = none (the summary keeps its tail)
}

func (o *Options) defaults() error {
	if o.Binary == "" || o.Dir == "" {
		return errors.New("soak: Options.Binary and Options.Dir are required")
	}
	if o.Duration == 0 {
		o.Duration = 20 * time.Second
	}
	if o.Clients == 0 {
		o.Clients = 24
	}
	if o.LongLived == 0 {
		o.LongLived = 12
	}
	if o.Backends == 0 {
		o.Backends = 5
	}
	if o.Backends < 3 {
		return errors.New("soak: at least 3 backends (the anchor and two to hurt)")
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 4 << 20
	}
	if o.MaxPayload < minPayload {
		return fmt.Errorf("soak: MaxPayload %d below the minimum payload %d", o.MaxPayload, minPayload)
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

const minPayload = 1 << 10

// run is one soak in progress.
type run struct {
	o        Options
	logMu    sync.Mutex
	start    time.Time
	reg      *Registry
	faults   *FaultLog
	backends []*EchoBackend
	proc     *Process
	admin    *AdminClient
	spec     configSpec
	path     string
	src      *payloadSource
	tally    *tally
	ids      atomic.Uint64
}

func (r *run) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.o.Progress, "%7.3fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run starts the echo backends and balance-l4, measures the idle process,
// runs clients and chaos for o.Duration, undoes every fault, waits for the
// process to settle and measures it again. The error is for a harness that
// could not run; a missed target is in Summary.Failures.
func Run(o Options) (*Summary, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &run{o: o, start: time.Now(), reg: NewRegistry(), faults: NewFaultLog()}
	s := &Summary{Seed: o.Seed, Duration: o.Duration, BrokenByFault: make(map[FaultKind]int64)}
	r.tally = &tally{reg: r.reg, faults: r.faults, s: s}
	defer r.closeBackends()
	for i := range o.Backends {
		b, err := StartEchoBackend(i, "127.0.0.1:0", r.reg)
		if err != nil {
			return nil, err
		}
		r.backends = append(r.backends, b)
	}
	r.src = newPayloadSource(o.Seed, minPayload, o.MaxPayload)
	if err := r.startProcess(); err != nil {
		return nil, err
	}
	defer r.proc.Kill()

	if err := r.warmUp(); err != nil {
		return nil, fmt.Errorf("soak: warming up: %w\n%s", err, r.proc.Output())
	}
	var err error
	if s.FDsIdle, s.GoroutinesIdle, err = r.measure(nil); err != nil {
		return nil, fmt.Errorf("soak: measuring the idle process: %w", err)
	}
	r.logf("idle: fds %v, goroutines %d", s.FDsIdle, s.GoroutinesIdle)

	// The soak proper.
	clientsStop, chaosStop, proberStop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var clients, background sync.WaitGroup
	for i := range o.Clients {
		clients.Go(func() { r.payloadWorker(i, clientsStop) })
	}
	for i := range o.LongLived {
		clients.Go(func() { r.longLivedWorker(i, clientsStop) })
	}
	var healthzFailed atomic.Int64
	var peak atomic.Int64
	background.Go(func() { r.probe(proberStop, &healthzFailed, &peak) })
	c := &chaos{
		rng: rand.New(rand.NewPCG(o.Seed, 0xc4a05)), proc: r.proc, admin: r.admin, backends: r.backends,
		faults: r.faults, configPath: r.path, spec: r.spec, logf: r.logf,
	}
	var chaosDone sync.WaitGroup
	chaosDone.Go(func() { c.run(chaosStop) })
	r.logf("chaos and %d+%d clients running for %v", o.Clients, o.LongLived, o.Duration)
	time.Sleep(o.Duration)

	close(chaosStop)
	chaosDone.Wait() // restarts and releases every backend
	r.logf("chaos stopped; stopping clients")
	close(clientsStop)
	clients.Wait()
	close(proberStop)
	background.Wait()
	if c.err != nil {
		return nil, fmt.Errorf("soak: chaos: %w", c.err)
	}
	s.Chaos, s.ReloadsGood, s.ReloadsBad = c.counts, c.reloadsGood, c.reloadsBad
	s.HealthzFailed = healthzFailed.Load()
	s.GoroutinesPeak = int(peak.Load())

	// Undo the operator actions, settle, measure.
	r.restore()
	s.Settled = r.settle()
	s.FDsAfter, s.GoroutinesAfter, err = r.measure(func(f FDs, g int) bool {
		return f.NonPipe() <= s.FDsIdle.NonPipe() && g <= s.GoroutinesIdle
	})
	if err != nil {
		r.tally.addProblem("measuring after settling: %v", err)
	}
	r.logf("after settling: fds %v, goroutines %d", s.FDsAfter, s.GoroutinesAfter)
	var counters map[string]any
	if err := r.admin.GetJSON("/api/v1/services/"+serviceName, &counters); err == nil {
		for _, k := range []string{"total_connections", "rejected_connections", "rejected", "retries"} {
			if v, ok := counters[k]; ok {
				s.ServiceCounters += fmt.Sprintf("%s=%v ", k, v)
			}
		}
	}
	s.Alive = r.proc.Alive()
	if code := r.proc.Stop(15 * time.Second); code != 0 {
		r.tally.addProblem("balance-l4 exited with %d on SIGTERM, want 0", code)
		s.Alive = false
	}
	var adminProblems []string
	s.Admin, adminProblems = r.admin.Stats()
	s.Problems = append(s.Problems, adminProblems...)
	if len(s.Failures()) > 0 {
		s.Problems = append(s.Problems, "balance-l4 output (tail):\n"+tail(r.proc.Output(), 4000))
	}
	return s, nil
}

func (r *run) closeBackends() {
	for _, b := range r.backends {
		b.Close()
	}
}

// startProcess writes the configuration and starts balance-l4 on it.
func (r *run) startProcess() error {
	adminAddr, err := freeAddr()
	if err != nil {
		return err
	}
	svcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	r.spec = configSpec{
		AdminListen:   adminAddr,
		Token:         "soak-token-" + fmt.Sprint(r.o.Seed),
		StateFile:     filepath.Join(r.o.Dir, "state.json"),
		ServiceListen: svcAddr,
		Algorithm:     "round_robin",
	}
	for i, b := range r.backends {
		r.spec.Backends = append(r.spec.Backends, configBackend{Name: fmt.Sprintf("b%d", i), Address: b.Addr(), Weight: 1})
	}
	r.path = filepath.Join(r.o.Dir, "balance.toml")
	if err := writeAtomically(r.path, r.spec.TOML()); err != nil {
		return err
	}
	if r.proc, err = StartTee(r.o.Output, r.o.Binary, "-config", r.path); err != nil {
		return err
	}
	r.admin = NewAdminClient(adminAddr, r.spec.Token)
	if err := waitUntil(20*time.Second, func() (bool, error) {
		if !r.proc.Alive() {
			return false, errors.New("balance-l4 exited")
		}
		code, _, _ := r.admin.Do(Request{Method: http.MethodGet, Path: "/healthz"})
		return code == http.StatusOK, nil
	}); err != nil {
		r.proc.Kill()
		return fmt.Errorf("soak: starting balance-l4: %w\n%s", err, r.proc.Output())
	}
	r.logf("balance-l4 pid %d: service %s, admin %s, %d backends", r.proc.PID(), svcAddr, adminAddr, len(r.backends))
	return nil
}

// warmUp waits for every backend to be healthy, sends traffic through each,
// and waits for the connections to end, so the idle measurement includes
// whatever the process keeps after its first connections.
func (r *run) warmUp() error {
	if err := r.waitIdle(20 * time.Second); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(r.o.Seed, 1))
	buf := make([]byte, 64<<10)
	for i := range 4 * len(r.backends) {
		a := exchange(r.spec.ServiceListen, r.ids.Add(1), r.src.next(rng), buf)
		r.reg.Forget(a.id)
		if a.err != nil {
			return fmt.Errorf("warm-up exchange %d: %w", i, a.err)
		}
	}
	stop := make(chan struct{})
	close(stop)
	if a := pinger(stop, r.spec.ServiceListen, r.ids.Add(1), r.src, rng, 0, time.Millisecond); a.err != nil {
		return fmt.Errorf("warm-up ping: %w", a.err)
	}
	return r.waitIdle(20 * time.Second)
}

// waitIdle waits until the service has no connection and every backend is
// healthy.
func (r *run) waitIdle(limit time.Duration) error {
	var why string
	err := waitUntil(limit, func() (bool, error) {
		var svc apiService
		if err := r.admin.GetJSON("/api/v1/services/"+serviceName, &svc); err != nil {
			why = err.Error()
			return false, nil
		}
		var ok bool
		ok, why = svc.idle(len(r.backends))
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, why)
	}
	return nil
}

// measure samples fds and goroutines every 200 ms and returns the lowest
// (transient health-check sockets and goroutines come and go). It samples for
// 2 s, then, if done is given and not yet satisfied, up to 10 s more.
func (r *run) measure(done func(FDs, int) bool) (FDs, int, error) {
	best, bestG := FDs{Sockets: 1 << 30}, 1<<31-1
	for i := 0; i < 60; i++ {
		f, err := r.proc.FDs()
		if err != nil {
			return FDs{}, 0, err
		}
		g, err := r.admin.Goroutines()
		if err != nil {
			return FDs{}, 0, err
		}
		if f.NonPipe() < best.NonPipe() {
			best = f
		}
		bestG = min(bestG, g)
		if i >= 10 && (done == nil || done(best, bestG)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return best, bestG, nil
}

// restore undoes the chaos's operator actions: the original file, every
// backend undrained, every weight back to the file's.
func (r *run) restore() {
	if err := writeAtomically(r.path, r.spec.TOML()); err != nil {
		r.tally.addProblem("restoring the configuration: %v", err)
		return
	}
	r.admin.Do(Request{Method: http.MethodPost, Path: "/api/v1/reload", Want: []int{http.StatusOK}})
	for _, b := range r.spec.Backends {
		p := "/api/v1/services/" + serviceName + "/backends/" + b.Name
		r.admin.Do(Request{Method: http.MethodPost, Path: p + "/undrain", Want: []int{http.StatusOK}})
		r.admin.Do(Request{Method: http.MethodPut, Path: p + "/weight", Body: []byte(`{"weight": 1}`), Want: []int{http.StatusOK}})
	}
	r.logf("restored the original configuration, undrained all, weights 1")
}

// settle sends a few connections through every backend (a circuit left
// half-open by the chaos closes only after a successful trial connection),
// then waits up to 30 s for the process to be idle again.
func (r *run) settle() bool {
	rng := rand.New(rand.NewPCG(r.o.Seed, 2))
	buf := make([]byte, 64<<10)
	time.Sleep(time.Second) // restarted backends pass their health checks
	for range 3 * len(r.backends) {
		a := exchange(r.spec.ServiceListen, r.ids.Add(1), r.src.next(rng), buf)
		r.tally.record(a)
	}
	if err := r.waitIdle(30 * time.Second); err != nil {
		r.tally.addProblem("settling: %v", err)
		return false
	}
	return true
}

func (r *run) payloadWorker(i int, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.o.Seed, uint64(100+i)))
	buf := make([]byte, 64<<10)
	for range maxAttemptsPerWorker {
		select {
		case <-stop:
			return
		default:
		}
		a := exchange(r.spec.ServiceListen, r.ids.Add(1), r.src.next(rng), buf)
		r.tally.record(a)
		if a.err != nil {
			time.Sleep(20 * time.Millisecond) // no hot loop against a dead proxy
		}
	}
}

func (r *run) longLivedWorker(i int, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.o.Seed, uint64(10_000+i)))
	for range maxAttemptsPerWorker {
		select {
		case <-stop:
			return
		default:
		}
		lifetime := time.Duration(2000+rng.IntN(8000)) * time.Millisecond
		interval := time.Duration(100+rng.IntN(300)) * time.Millisecond
		a := pinger(stop, r.spec.ServiceListen, r.ids.Add(1), r.src, rng, lifetime, interval)
		r.tally.record(a)
		if a.err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// maxAttemptsPerWorker bounds a client worker's loop whatever the duration.
const maxAttemptsPerWorker = 10_000_000

// probe checks /healthz every 250 ms and the goroutine count every second
// until stop is closed.
func (r *run) probe(stop <-chan struct{}, failed, peak *atomic.Int64) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for n := 0; n < maxChaosTicks; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		code, _, err := r.admin.Do(Request{Method: http.MethodGet, Path: "/healthz", Want: []int{http.StatusOK}})
		if code != http.StatusOK {
			failed.Add(1)
			r.tally.addProblem("/healthz: %d %v", code, errOrNil(err))
		}
		if n%4 == 0 {
			if g, err := r.admin.Goroutines(); err == nil && int64(g) > peak.Load() {
				peak.Store(int64(g))
			}
		}
	}
}

// waitUntil polls cond every 100 ms for readiness (a process starting,
// connections ending) until it holds, fails, or limit passes.
func waitUntil(limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
