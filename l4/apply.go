package l4

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"time"

	"github.com/balancel4/balance-l4/balance"
	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/resilience"
	"github.com/balancel4/balance-l4/status"
)

// Apply starts the runtime on cfg (first call) or reloads it (later calls).
// cfg must be validated. Every new listener is opened first; if one cannot
// be, those opened are closed, nothing changes, and the error names the
// address and the OS error.
//
// On a reload established connections are never touched. Added services
// start listening; removed ones stop accepting while their connections
// finish. A backend is identified by (service, name, address): one that stays
// keeps its health state, counters, drain flag and operator weight; an added
// one takes traffic once its first active check passed; a removed one takes no
// new connection, and its connections end by themselves or at timeouts.drain.
// A service whose listen address changed listens on the new one. Other
// settings apply to new connections.
func (r *Runtime) Apply(cfg *config.Config) (status.Reload, error) {
	r.mu.Lock()
	rl, after, err := r.applyLocked(cfg)
	r.mu.Unlock()
	if err != nil {
		return status.Reload{}, err
	}
	after()
	return rl, nil
}

// monitorOp is a change to the active checks, made after r.mu is released
// (Monitor.Remove waits for a check in flight).
type monitorOp struct {
	remove string
	add    *health.Target
}

func (r *Runtime) applyLocked(cfg *config.Config) (status.Reload, func(), error) {
	if r.stopped {
		return status.Reload{}, nil, ErrShutdown
	}
	first := !r.started

	// Everything that can fail comes first: checkers, pickers, listeners.
	checkers := map[string]health.Checker{}
	for _, sc := range cfg.Services {
		if _, err := balance.New(sc.Algorithm, nil, r.rand); err != nil {
			return status.Reload{}, nil, fmt.Errorf("service %s: %w", sc.Name, err)
		}
		if sc.HealthCheck.Enabled {
			ch, err := health.NewChecker(checkSettings(sc.HealthCheck))
			if err != nil {
				return status.Reload{}, nil, fmt.Errorf("service %s: building health check: %w", sc.Name, err)
			}
			checkers[sc.Name] = ch
		}
	}
	// A fixed address that another service gives up (removed, or moved
	// elsewhere) is handed over with its listener instead of re-opened.
	byAddr := map[string]*acceptor{}
	for _, s := range r.services {
		if a := r.acceptors[s]; a != nil && fixedPort(s.listenAddr) {
			byAddr[s.listenAddr] = a
		}
	}
	handoff := map[string]*acceptor{}
	handedOff := map[*acceptor]bool{}
	listeners := map[string]*net.TCPListener{}
	for _, sc := range cfg.Services {
		if old := r.services[sc.Name]; old != nil && old.listenAddr == sc.Listen {
			continue
		}
		if a := byAddr[sc.Listen]; a != nil {
			handoff[sc.Name] = a
			handedOff[a] = true
			continue
		}
		ln, err := listen(sc.Listen)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return status.Reload{}, nil, fmt.Errorf("service %s: %w", sc.Name, err)
		}
		listeners[sc.Name] = ln
	}

	// From here on nothing fails.
	var rl status.Reload
	var ops []monitorOp
	var closing []*acceptor
	services := make(map[string]*service, len(cfg.Services))
	order := make([]*service, 0, len(cfg.Services))
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		s := r.services[sc.Name]
		if s == nil {
			s = &service{r: r, name: sc.Name, backends: map[string]*backend{}}
			s.acceptLog.interval = logInterval
			s.dialLog.interval = logInterval
			s.attemptLog.interval = logInterval
			rl.ServicesAdded = append(rl.ServicesAdded, sc.Name)
		} else if !sameServiceSettings(&s.cfg.Load().Service, sc) {
			rl.ServicesChanged = append(rl.ServicesChanged, sc.Name)
		}
		old := s.cfg.Load()
		s.cfg.Store(r.serviceConfig(sc, old, cfg.Log.AccessLog))

		// Active checks: a new checker when the check settings changed.
		recheck := s.checkCfg == nil || !reflect.DeepEqual(*s.checkCfg, sc.HealthCheck)
		if recheck {
			hc := sc.HealthCheck
			s.checkCfg, s.checker = &hc, checkers[sc.Name]
		}

		kept := make(map[string]*backend, len(sc.Backends))
		all := make([]*backend, 0, len(sc.Backends))
		for _, bc := range sc.Backends {
			key := backendKey(bc.Name, bc.Address)
			b := s.backends[key]
			added := b == nil
			var prev *backendSettings
			if added {
				b = s.newBackend(bc, sc.HealthCheck)
				b.awaitingCheck.Store(!first && sc.HealthCheck.Enabled)
				r.restorePending(b)
				rl.BackendsAdded = append(rl.BackendsAdded, sc.Name+"/"+bc.Name)
			} else {
				prev = b.settings
				if b.fileWeight.Load() != int32(bc.Weight) || b.backup.Load() != bc.Backup || b.maxConns.Load() != int64(bc.MaxConnections) {
					rl.BackendsChanged = append(rl.BackendsChanged, sc.Name+"/"+bc.Name)
				}
			}
			b.configure(bc, sc, prev)
			id := sc.Name + "/" + bc.Name
			switch {
			case !sc.HealthCheck.Enabled && prev != nil && prev.check != nil:
				ops = append(ops, monitorOp{remove: id})
			case sc.HealthCheck.Enabled && (added || recheck || prev.check == nil):
				ops = append(ops, monitorOp{add: &health.Target{
					ID:       id,
					Address:  b.address,
					Checker:  firstCheck{Checker: s.checker, b: b},
					Interval: sc.HealthCheck.Interval,
					Timeout:  sc.HealthCheck.Timeout,
					Status:   b.status,
				}})
			}
			b.settings = &backendSettings{passive: sc.HealthCheck.Passive, breaker: sc.Resilience.CircuitBreaker}
			if sc.HealthCheck.Enabled {
				b.settings.check = s.checkCfg
			}
			kept[key] = b
			all = append(all, b)
		}
		for key, b := range s.backends {
			if kept[key] == nil {
				rl.BackendsRemoved = append(rl.BackendsRemoved, sc.Name+"/"+b.name)
				ops = append(ops, s.retireBackend(b, sc.Timeouts.Drain)...)
			}
		}
		s.backends = kept
		set, err := newBackendSet(sc.Algorithm, all, r.rand)
		if err != nil {
			// Unreachable: the algorithm was checked above.
			panic(fmt.Sprintf("l4: service %s: %v", sc.Name, err))
		}
		s.set.Store(set)
		s.pruneRemoved()

		ln := listeners[sc.Name]
		if a := handoff[sc.Name]; a != nil {
			ln = a.detach()
			for o, oa := range r.acceptors {
				if oa == a {
					delete(r.acceptors, o)
				}
			}
		}
		if ln != nil {
			if a := r.acceptors[s]; a != nil && !handedOff[a] {
				closing = append(closing, a)
			}
			r.acceptors[s] = s.startAcceptor(ln)
			s.listenAddr = sc.Listen
			s.boundAddr.Store(new(ln.Addr().String()))
		}
		services[sc.Name] = s
		order = append(order, s)
	}
	for name, s := range r.services {
		if services[name] != nil {
			continue
		}
		rl.ServicesRemoved = append(rl.ServicesRemoved, name)
		if a := r.acceptors[s]; a != nil {
			if !handedOff[a] {
				closing = append(closing, a)
			}
			delete(r.acceptors, s)
		}
		drain := s.cfg.Load().Timeouts.Drain
		for _, b := range s.backends {
			ops = append(ops, s.retireBackend(b, drain)...)
		}
		s.backends = map[string]*backend{}
		r.retired = append(r.retired, s)
	}
	r.services, r.order = services, order
	r.pruneRetired()
	r.started = true
	r.pending = nil
	rl.Summary = summarize(rl, first)

	after := func() {
		for _, a := range closing {
			a.close()
		}
		for _, op := range ops {
			if op.remove != "" {
				r.monitor.Remove(op.remove)
			}
		}
		for _, op := range ops {
			if op.add != nil {
				r.monitor.Add(*op.add)
			}
		}
		r.log.Info().Str("summary", rl.Summary).Msg("configuration applied")
	}
	return rl, after, nil
}

// logInterval is how often a rate-limited log line may repeat.
const logInterval = 5 * time.Second

// serviceConfig builds the settings new connections of sc read. A retry
// budget whose settings did not change is kept with its history.
func (r *Runtime) serviceConfig(sc *config.Service, old *serviceConfig, accessLog bool) *serviceConfig {
	rt := sc.Resilience.Retry
	policy := resilience.RetryPolicy{MaxAttempts: 1}
	if rt.Enabled {
		policy = resilience.RetryPolicy{
			MaxAttempts: max(rt.MaxAttempts, 1),
			Backoff: resilience.Backoff{
				Initial:    rt.InitialDelay,
				Max:        rt.MaxDelay,
				Multiplier: rt.Multiplier,
				Jitter:     rt.Jitter,
				Rand:       r.randFloat,
			},
		}
		if old != nil && old.Resilience.Retry.Enabled && old.retry.Budget != nil &&
			old.Resilience.Retry.BudgetRatio == rt.BudgetRatio &&
			old.Resilience.Retry.MinRetriesPerSecond == rt.MinRetriesPerSecond {
			policy.Budget = old.retry.Budget
		} else {
			policy.Budget = resilience.NewBudget(rt.BudgetRatio, rt.MinRetriesPerSecond, r.now)
		}
	}
	// No TCP keep-alive: Go's default costs four setsockopt calls per
	// connection, and the idle timeout already reaps dead peers.
	d := &net.Dialer{Timeout: sc.Timeouts.Connect, KeepAlive: -1}
	d.SetMultipathTCP(false)
	c := &serviceConfig{Service: *sc, retry: policy, dialer: d, accessLog: accessLog}
	c.Backends = nil // the backend set is the truth for backends
	return c
}

func (r *Runtime) randFloat() float64 { return float64(r.rand()>>11) / (1 << 53) }

// sameServiceSettings compares everything but the backends.
func sameServiceSettings(a, b *config.Service) bool {
	x, y := *a, *b
	x.Backends, y.Backends = nil, nil
	return reflect.DeepEqual(x, y)
}

// fixedPort reports whether a listen address names its port (not 0).
func fixedPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != "0" && port != ""
}

func backendKey(name, address string) string { return name + "\x00" + address }

// retireBackend takes b out of rotation for good: it takes no new
// connection, its established ones end by themselves or after drain.
func (s *service) retireBackend(b *backend, drain time.Duration) []monitorOp {
	b.removed.Store(true)
	if b.unsubscribe != nil {
		b.unsubscribe()
	}
	b.stopTimers()
	var ops []monitorOp
	if b.settings != nil && b.settings.check != nil {
		ops = append(ops, monitorOp{remove: s.name + "/" + b.name})
	}
	if b.active.Load() > 0 {
		b.startDrainTimer(drain)
		s.removed = append(s.removed, b)
	}
	return ops
}

// pruneRemoved forgets removed backends whose connections all ended.
func (s *service) pruneRemoved() {
	kept := s.removed[:0]
	for _, b := range s.removed {
		if b.active.Load() > 0 {
			kept = append(kept, b)
		}
	}
	clear(s.removed[len(kept):])
	s.removed = kept
}

// pruneRetired forgets removed services whose connections all ended.
func (r *Runtime) pruneRetired() {
	kept := r.retired[:0]
	for _, s := range r.retired {
		s.pruneRemoved()
		if s.active.Load() > 0 || len(s.removed) > 0 {
			kept = append(kept, s)
		}
	}
	clear(r.retired[len(kept):])
	r.retired = kept
}

// allBackendsLocked returns the current and removed backends (under r.mu).
func (s *service) allBackendsLocked() []*backend {
	out := make([]*backend, 0, len(s.backends)+len(s.removed))
	for _, b := range s.backends {
		out = append(out, b)
	}
	return append(out, s.removed...)
}

// listen opens a service's listener. Multipath TCP is turned off: splice
// and the kernel counters the idle timeout reads need plain TCP sockets.
// Accepted sockets get no TCP keep-alive (as HAProxy's default): the idle
// timeout reaps dead clients, and it saves four system calls per connection.
func listen(addr string) (*net.TCPListener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, unwrapOpError(err))
	}
	return ln.(*net.TCPListener), nil
}

// unwrapOpError keeps the OS error of a *net.OpError, whose own text would
// repeat the address.
func unwrapOpError(err error) error {
	if op, ok := err.(*net.OpError); ok {
		return op.Err
	}
	return err
}

// summarize says in one line what a reload changed.
func summarize(rl status.Reload, first bool) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(len(rl.ServicesAdded), "services added")
	add(len(rl.ServicesRemoved), "services removed")
	add(len(rl.ServicesChanged), "services changed")
	add(len(rl.BackendsAdded), "backends added")
	add(len(rl.BackendsRemoved), "backends removed")
	add(len(rl.BackendsChanged), "backends changed")
	if len(parts) == 0 {
		return "no changes"
	}
	s := strings.Join(parts, ", ")
	if first {
		s = "started: " + s
	}
	return s
}
