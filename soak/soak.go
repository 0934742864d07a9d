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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/balancel4/balance-l4/internal/etcdtest"
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

	// Etcd, when set, makes it a fleet soak (SPEC §6): FleetInstances
	// instances of balance-l4 share operator state through this cluster,
	// which the chaos kills, stops and restarts members of. It must be a
	// running cluster of 3 members without TLS or auth (etcdtest.Start(tb,
	// etcdtest.Options{})) that the soak alone uses.
	Etcd           *etcdtest.Cluster
	FleetInstances int // 0 = 3
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
	if o.Etcd != nil {
		if o.FleetInstances == 0 {
			o.FleetInstances = 3
		}
		if o.FleetInstances < 2 {
			return errors.New("soak: a fleet has at least 2 instances")
		}
		if o.Etcd.Members() != 3 || o.Etcd.CAFile != "" || o.Etcd.Username != "" {
			return errors.New("soak: Options.Etcd must be a plain 3-member cluster (no TLS, no auth)")
		}
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
	insts    []*instance // one, or a fleet's
	fleet    *fleetRun   // nil without Options.Etcd
	src      *payloadSource
	tally    *tally
	ids      atomic.Uint64
}

// instance is one running balance-l4: alone, or one of a fleet.
type instance struct {
	index int
	spec  configSpec // its original configuration
	path  string     // of its configuration file
	proc  *Process
	admin *AdminClient
	peak  atomic.Int64 // goroutines, the most seen during the chaos
}

// name is the instance's fleet id, or "balance-l4" alone.
func (in *instance) name() string {
	if in.spec.Fleet != nil {
		return in.spec.Fleet.Instance
	}
	return "balance-l4"
}

func (r *run) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.o.Progress, "%7.3fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run starts the echo backends and balance-l4 (with Options.Etcd, a fleet of
// instances on that cluster), measures the idle processes, runs clients and
// chaos for o.Duration, undoes every fault, waits for the processes to
// settle and measures them again. The error is for a harness that could not
// run; a missed target is in Summary.Failures.
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
	if o.Etcd != nil {
		f, err := newFleetRun(o.Etcd, o.Seed, r.logf, r.tally.addProblem)
		if err != nil {
			return nil, err
		}
		defer f.close()
		r.fleet = f
	}
	if err := r.startInstances(); err != nil {
		return nil, err
	}
	defer r.killAll()

	if err := r.warmUp(); err != nil {
		return nil, fmt.Errorf("soak: warming up: %w\n%s", err, r.outputs(8000))
	}
	s.Procs = make([]ProcFigures, len(r.insts))
	for i, in := range r.insts {
		p := &s.Procs[i]
		p.Name = in.name()
		var err error
		if p.FDsIdle, p.GoroutinesIdle, err = r.measure(in, nil); err != nil {
			return nil, fmt.Errorf("soak: measuring the idle process %s: %w", in.name(), err)
		}
		if p.RSSIdle, err = in.proc.RSS(); err != nil {
			return nil, fmt.Errorf("soak: measuring the idle process %s: %w", in.name(), err)
		}
		r.logf("%s idle: fds %v, goroutines %d", in.name(), p.FDsIdle, p.GoroutinesIdle)
	}

	// The soak proper. Clients spread over the instances' listeners.
	clientsStop, chaosStop, proberStop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var clients, background sync.WaitGroup
	for i := range o.Clients {
		in := r.insts[i%len(r.insts)]
		clients.Go(func() { r.payloadWorker(i, in, clientsStop) })
	}
	for i := range o.LongLived {
		in := r.insts[i%len(r.insts)]
		clients.Go(func() { r.longLivedWorker(i, in, clientsStop) })
	}
	var healthzFailed atomic.Int64
	background.Go(func() { r.probe(proberStop, &healthzFailed) })
	c := &chaos{
		rng: rand.New(rand.NewPCG(o.Seed, 0xc4a05)), insts: r.insts, backends: r.backends,
		faults: r.faults, logf: r.logf,
	}
	var chaosDone sync.WaitGroup
	chaosDone.Go(func() { c.run(chaosStop) })
	if r.fleet != nil {
		chaosDone.Go(func() { r.fleet.chaos(chaosStop, r.insts) })
	}
	r.logf("chaos and %d+%d clients running for %v on %d instance(s)", o.Clients, o.LongLived, o.Duration, len(r.insts))
	time.Sleep(o.Duration)

	close(chaosStop)
	chaosDone.Wait() // restarts and releases every backend, and every etcd member
	r.logf("chaos stopped; stopping clients")
	close(clientsStop)
	clients.Wait()
	close(proberStop)
	background.Wait()
	if c.err != nil {
		return nil, fmt.Errorf("soak: chaos: %w", c.err)
	}
	if r.fleet != nil && r.fleet.err != nil {
		return nil, fmt.Errorf("soak: etcd chaos: %w", r.fleet.err)
	}
	s.Chaos, s.ReloadsGood, s.ReloadsBad = c.counts, c.reloadsGood, c.reloadsBad
	s.HealthzFailed = healthzFailed.Load()
	for i, in := range r.insts {
		s.Procs[i].GoroutinesPeak = int(in.peak.Load())
	}

	// In a fleet: etcd whole again, every instance connected, and all of
	// them agreeing with etcd.
	if r.fleet != nil {
		r.fleet.finish(r.insts)
	}
	// Undo the operator actions, settle, measure.
	r.restore()
	s.Settled = r.settle()
	for i, in := range r.insts {
		p := &s.Procs[i]
		var err error
		p.FDsAfter, p.GoroutinesAfter, err = r.measure(in, func(f FDs, g int) bool {
			return f.NonPipe() <= p.FDsIdle.NonPipe() && g <= p.GoroutinesIdle
		})
		if err != nil {
			r.tally.addProblem("measuring %s after settling: %v", in.name(), err)
		}
		if p.RSSAfter, err = in.proc.RSS(); err != nil {
			r.tally.addProblem("measuring %s after settling: %v", in.name(), err)
		}
		r.logf("%s after settling: fds %v, goroutines %d", in.name(), p.FDsAfter, p.GoroutinesAfter)
		var counters map[string]any
		if err := in.admin.GetJSON("/api/v1/services/"+serviceName, &counters); err == nil {
			for _, k := range []string{"total_connections", "rejected_connections", "rejected", "retries"} {
				if v, ok := counters[k]; ok {
					p.ServiceCounters += fmt.Sprintf("%s=%v ", k, v)
				}
			}
		}
	}
	if r.fleet != nil {
		s.Fleet = r.fleet.summary(r.insts, c.refused)
	}
	for i, in := range r.insts {
		p := &s.Procs[i]
		p.Alive = in.proc.Alive()
		if code := in.proc.Stop(15 * time.Second); code != 0 {
			r.tally.addProblem("%s exited with %d on SIGTERM, want 0", in.name(), code)
			p.Alive = false
		}
	}
	s.Admin = AdminStats{ByStatus: make(map[int]int64)}
	for _, in := range r.insts {
		st, problems := in.admin.Stats()
		s.Admin.add(st)
		for _, p := range problems {
			if len(s.Problems) < maxProblems {
				s.Problems = append(s.Problems, in.name()+": "+p)
			}
		}
	}
	if len(s.Failures()) > 0 {
		s.Problems = append(s.Problems, "balance-l4 output (tail):\n"+r.outputs(4000))
	}
	return s, nil
}

func (r *run) closeBackends() {
	for _, b := range r.backends {
		b.Close()
	}
}

func (r *run) killAll() {
	for _, in := range r.insts {
		in.proc.Kill()
	}
}

// outputs is the tail of every instance's output, n bytes in all.
func (r *run) outputs(n int) string {
	if len(r.insts) == 1 {
		return tail(r.insts[0].proc.Output(), n)
	}
	var b strings.Builder
	for _, in := range r.insts {
		fmt.Fprintf(&b, "--- %s:\n%s\n", in.name(), tail(in.proc.Output(), n/len(r.insts)))
	}
	return b.String()
}

// startInstances writes the configurations and starts balance-l4 on them:
// one instance, or a fleet's.
func (r *run) startInstances() error {
	n := 1
	if r.fleet != nil {
		n = r.o.FleetInstances
	}
	for i := range n {
		in := &instance{index: i}
		adminAddr, err := freeAddr()
		if err != nil {
			return err
		}
		svcAddr, err := freeAddr()
		if err != nil {
			return err
		}
		in.spec = configSpec{
			AdminListen:   adminAddr,
			Token:         "soak-token-" + fmt.Sprint(r.o.Seed),
			StateFile:     filepath.Join(r.o.Dir, "state.json"),
			ServiceListen: svcAddr,
			Algorithm:     "round_robin",
		}
		in.path = filepath.Join(r.o.Dir, "balance.toml")
		if r.fleet != nil {
			id := fmt.Sprintf("i%d", i)
			in.spec.Fleet = &fleetSpec{Etcd: r.fleet.cluster.Endpoints(), Name: fleetName, Instance: id}
			in.spec.StateFile = filepath.Join(r.o.Dir, id+"-state.json")
			in.path = filepath.Join(r.o.Dir, id+".toml")
		}
		for i, b := range r.backends {
			in.spec.Backends = append(in.spec.Backends, configBackend{Name: fmt.Sprintf("b%d", i), Address: b.Addr(), Weight: 1})
		}
		if err := writeAtomically(in.path, in.spec.TOML()); err != nil {
			return err
		}
		if in.proc, err = StartTee(r.o.Output, r.o.Binary, "-config", in.path); err != nil {
			return err
		}
		in.admin = NewAdminClient(adminAddr, in.spec.Token)
		if r.fleet != nil {
			in.admin.duringEtcdFault = r.fleet.faults.during
		}
		r.insts = append(r.insts, in)
		if err := waitUntil(20*time.Second, func() (bool, error) {
			if !in.proc.Alive() {
				return false, errors.New("balance-l4 exited")
			}
			code, _, _ := in.admin.Do(Request{Method: http.MethodGet, Path: "/healthz"})
			return code == http.StatusOK, nil
		}); err != nil {
			return fmt.Errorf("soak: starting balance-l4 %s: %w\n%s", in.name(), err, in.proc.Output())
		}
		r.logf("balance-l4 %s pid %d: service %s, admin %s, %d backends", in.name(), in.proc.PID(), svcAddr, adminAddr, len(r.backends))
	}
	return nil
}

// warmUp waits for every backend to be healthy (and, in a fleet, for every
// instance to be connected and to see the others), sends traffic through
// each backend of each instance, and waits for the connections to end, so
// the idle measurement includes whatever a process keeps after its first
// connections.
func (r *run) warmUp() error {
	if r.fleet != nil {
		if err := r.fleet.waitFleet(r.insts, 30*time.Second); err != nil {
			return err
		}
	}
	if err := r.waitIdle(20 * time.Second); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(r.o.Seed, 1))
	buf := make([]byte, 64<<10)
	for _, in := range r.insts {
		for i := range 4 * len(r.backends) {
			a := exchange(in.spec.ServiceListen, r.ids.Add(1), r.src.next(rng), buf)
			r.reg.Forget(a.id)
			if a.err != nil {
				return fmt.Errorf("warm-up exchange %d through %s: %w", i, in.name(), a.err)
			}
		}
		stop := make(chan struct{})
		close(stop)
		if a := pinger(stop, in.spec.ServiceListen, r.ids.Add(1), r.src, rng, 0, time.Millisecond); a.err != nil {
			return fmt.Errorf("warm-up ping through %s: %w", in.name(), a.err)
		}
	}
	return r.waitIdle(20 * time.Second)
}

// waitIdle waits until the service has no connection and every backend is
// healthy, on every instance.
func (r *run) waitIdle(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, in := range r.insts {
		var why string
		err := waitUntil(max(time.Until(deadline), 0), func() (bool, error) {
			var svc apiService
			if err := in.admin.GetJSON("/api/v1/services/"+serviceName, &svc); err != nil {
				why = err.Error()
				return false, nil
			}
			var ok bool
			ok, why = svc.idle(len(r.backends))
			return ok, nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w: %s", in.name(), err, why)
		}
	}
	return nil
}

// measure samples an instance's fds and goroutines every 200 ms and returns
// the lowest (transient health-check sockets and goroutines come and go). It
// samples for 2 s, then, if done is given and not yet satisfied, up to 10 s
// more.
func (r *run) measure(in *instance, done func(FDs, int) bool) (FDs, int, error) {
	best, bestG := FDs{Sockets: 1 << 30}, 1<<31-1
	for i := 0; i < 60; i++ {
		f, err := in.proc.FDs()
		if err != nil {
			return FDs{}, 0, err
		}
		g, err := in.admin.Goroutines()
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

// restore undoes the chaos's operator actions: the original file on every
// instance, every backend undrained, every weight back to the file's. In a
// fleet the instances must agree with etcd before (what the chaos left) and
// after (what restore asked for).
func (r *run) restore() {
	for _, in := range r.insts {
		if err := writeAtomically(in.path, in.spec.TOML()); err != nil {
			r.tally.addProblem("restoring the configuration of %s: %v", in.name(), err)
			return
		}
		in.admin.Do(Request{Method: http.MethodPost, Path: "/api/v1/reload", Want: []int{http.StatusOK}})
	}
	if r.fleet != nil {
		r.fleet.agreed = r.fleet.agree(r.insts, "after the chaos")
	}
	for k, b := range r.insts[0].spec.Backends {
		in := r.insts[k%len(r.insts)] // in a fleet, through each instance in turn
		p := "/api/v1/services/" + serviceName + "/backends/" + b.Name
		in.admin.Do(Request{Method: http.MethodPost, Path: p + "/undrain", Want: []int{http.StatusOK}, FleetWrite: r.fleet != nil})
		in.admin.Do(Request{Method: http.MethodPut, Path: p + "/weight", Body: []byte(`{"weight": 1}`), Want: []int{http.StatusOK}, FleetWrite: r.fleet != nil})
	}
	r.logf("restored the original configuration, undrained all, weights 1")
	if r.fleet != nil {
		r.fleet.restored = r.fleet.agree(r.insts, "after restoring")
	}
}

// settle sends a few connections through every backend of every instance
// (a circuit left half-open by the chaos closes only after a successful
// trial connection), then waits for the processes to be idle again, for up
// to 30 s. A round of connections is sent again every 2 s while they are
// not: a circuit that was still open during a round turns half-open only
// when its timeout passes, and then waits for a connection of its own.
func (r *run) settle() bool {
	rng := rand.New(rand.NewPCG(r.o.Seed, 2))
	buf := make([]byte, 64<<10)
	time.Sleep(time.Second) // restarted backends pass their health checks
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, in := range r.insts {
			for range 3 * len(r.backends) {
				a := exchange(in.spec.ServiceListen, r.ids.Add(1), r.src.next(rng), buf)
				a.instance = in.index
				r.tally.record(a)
			}
		}
		err := r.waitIdle(min(2*time.Second, time.Until(deadline)))
		if err == nil {
			return true
		}
		if time.Now().After(deadline) {
			r.tally.addProblem("settling: %v", err)
			return false
		}
	}
}

func (r *run) payloadWorker(i int, in *instance, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.o.Seed, uint64(100+i)))
	buf := make([]byte, 64<<10)
	for range maxAttemptsPerWorker {
		select {
		case <-stop:
			return
		default:
		}
		a := exchange(in.spec.ServiceListen, r.ids.Add(1), r.src.next(rng), buf)
		a.instance = in.index
		r.tally.record(a)
		if a.err != nil {
			time.Sleep(20 * time.Millisecond) // no hot loop against a dead proxy
		}
	}
}

func (r *run) longLivedWorker(i int, in *instance, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.o.Seed, uint64(10_000+i)))
	for range maxAttemptsPerWorker {
		select {
		case <-stop:
			return
		default:
		}
		lifetime := time.Duration(2000+rng.IntN(8000)) * time.Millisecond
		interval := time.Duration(100+rng.IntN(300)) * time.Millisecond
		a := pinger(stop, in.spec.ServiceListen, r.ids.Add(1), r.src, rng, lifetime, interval)
		a.instance = in.index
		r.tally.record(a)
		if a.err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// maxAttemptsPerWorker bounds a client worker's loop whatever the duration.
const maxAttemptsPerWorker = 10_000_000

// probe checks every instance's /healthz every 250 ms and its goroutine
// count every second until stop is closed.
func (r *run) probe(stop <-chan struct{}, failed *atomic.Int64) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for n := 0; n < maxChaosTicks; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, in := range r.insts {
			code, _, err := in.admin.Do(Request{Method: http.MethodGet, Path: "/healthz", Want: []int{http.StatusOK}})
			if code != http.StatusOK {
				failed.Add(1)
				r.tally.addProblem("%s /healthz: %d %v", in.name(), code, errOrNil(err))
			}
			if n%4 == 0 {
				if g, err := in.admin.Goroutines(); err == nil && int64(g) > in.peak.Load() {
					in.peak.Store(int64(g))
				}
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
