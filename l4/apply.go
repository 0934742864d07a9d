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

// applyLocked applies cfg under r.mu in steps: build what can fail, open
// listeners, then (nothing fails from there) update each service, reconcile
// its backends and move it onto its listener, and retire removed services.
// What must wait for r.mu to be released (closing listeners, changing active
// checks) is returned as a function.
func (r *Runtime) applyLocked(cfg *config.Config) (status.Reload, func(), error) {
	if r.stopped {
		return status.Reload{}, nil, ErrShutdown
	}
	first := !r.started

	builds, err := r.buildServices(cfg)
	if err != nil {
		return status.Reload{}, nil, err
	}
	startedEngine := r.eng == nil
	if err := r.startEngineLocked(); err != nil {
		return status.Reload{}, nil, err
	}
	lns, err := r.openListeners(cfg)
	if err != nil {
		if startedEngine {
			r.eng.Close()
			r.eng = nil
		}
		return status.Reload{}, nil, err
	}

	// From here on nothing fails.
	var rl status.Reload
	var ops []monitorOp
	services := make(map[string]*service, len(builds))
	order := make([]*service, 0, len(builds))
	for i := range builds {
		sb := &builds[i]
		s := r.services[sb.sc.Name]
		if s == nil {
			s = r.newService(sb.sc.Name)
			rl.ServicesAdded = append(rl.ServicesAdded, s.name)
		} else if !sameServiceSettings(&s.cfg.Load().Service, sb.sc) {
			rl.ServicesChanged = append(rl.ServicesChanged, s.name)
		}
		s.configure(sb)
		added, removed, changed, bops := r.reconcileBackends(s, s.wantBackendsLocked(sb.sc))
		rl.BackendsAdded = append(rl.BackendsAdded, added...)
		rl.BackendsRemoved = append(rl.BackendsRemoved, removed...)
		rl.BackendsChanged = append(rl.BackendsChanged, changed...)
		ops = append(ops, bops...)
		services[s.name] = s
		order = append(order, s)
	}
	closing := r.assignFronts(order, lns)
	gone, gops := r.retireServices(services)
	rl.ServicesRemoved = append(rl.ServicesRemoved, gone...)
	ops = append(ops, gops...)

	r.services, r.order = services, order
	r.pruneRetired()
	r.started = true
	r.pending = nil
	rl.Summary = summarize(rl, first)

	after := func() {
		for _, a := range closing {
			a.close()
		}
		r.applyMonitorOps(ops)
		r.log.Info().Str("summary", rl.Summary).Msg("configuration applied")
	}
	return rl, after, nil
}

// serviceBuild is what buildServices prepares for one service of a
// configuration.
type serviceBuild struct {
	sc      *config.Service
	cfg     *serviceConfig // what new connections will read
	checker health.Checker // nil when active checks are off
}

// buildServices builds everything of cfg that can fail (checkers, and a
// check of each algorithm, whose pickers are built with the backends) and
// the settings new connections will read. It changes no running state, so
// an error leaves the runtime as it was.
func (r *Runtime) buildServices(cfg *config.Config) ([]serviceBuild, error) {
	builds := make([]serviceBuild, 0, len(cfg.Services))
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		if _, err := balance.New(sc.Algorithm, nil, r.rand); err != nil {
			return nil, fmt.Errorf("service %s: %w", sc.Name, err)
		}
		sb := serviceBuild{sc: sc}
		if sc.HealthCheck.Enabled {
			ch, err := health.NewChecker(checkSettings(sc.HealthCheck))
			if err != nil {
				return nil, fmt.Errorf("service %s: building health check: %w", sc.Name, err)
			}
			sb.checker = ch
		}
		var old *serviceConfig
		if s := r.services[sc.Name]; s != nil {
			old = s.cfg.Load()
		}
		sb.cfg = r.serviceConfig(sc, old, cfg.Log.AccessLog)
		builds = append(builds, sb)
	}
	return builds, nil
}

// newService returns a service with no settings and no backends yet.
func (r *Runtime) newService(name string) *service {
	s := &service{r: r, name: name, backends: map[string]*backend{}}
	s.acceptLog.interval = logInterval
	s.dialLog.interval = logInterval
	s.attemptLog.interval = logInterval
	s.clientLog.interval = logInterval
	return s
}

// configure installs what buildServices built for s (under r.mu). The
// active checker is replaced only when the check settings changed, so
// unchanged checks keep running undisturbed.
func (s *service) configure(sb *serviceBuild) {
	s.cfg.Store(sb.cfg)
	if s.checkCfg == nil || !reflect.DeepEqual(*s.checkCfg, sb.sc.HealthCheck) {
		hc := sb.sc.HealthCheck
		s.checkCfg, s.checker = &hc, sb.checker
	}
}

// listenerPlan holds the listeners an apply opened: one for every address
// (listenKey) that has no front yet.
type listenerPlan struct {
	opened map[string]*net.TCPListener // by listenKey
}

// openListeners opens a listener for every address of cfg that no front
// listens on yet. An address that stays keeps its listener, whichever
// services take it over (a service that moves there, one renamed, services
// routed by SNI that come and go). It changes no running state: if one
// cannot be opened, those it opened are closed and the error names the
// service and the address.
func (r *Runtime) openListeners(cfg *config.Config) (*listenerPlan, error) {
	p := &listenerPlan{opened: map[string]*net.TCPListener{}}
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		key := listenKey(sc)
		if r.listeners[key] != nil || p.opened[key] != nil {
			continue
		}
		ln, err := r.openListener(sc.Listen)
		if err != nil {
			for _, l := range p.opened {
				_ = l.Close()
			}
			return nil, fmt.Errorf("service %s: %w", sc.Name, err)
		}
		p.opened[key] = ln
	}
	return p, nil
}

// assignFronts gives every service of order (configuration order, already
// configured) its front under r.mu: the one its address has, or a new one
// on the listener p opened, and rebuilds each front's routes from the
// services on it. It returns the acceptors of addresses no service listens
// on any more, to be closed once r.mu is released.
func (r *Runtime) assignFronts(order []*service, p *listenerPlan) []*acceptor {
	groups := map[string][]*service{}
	var keys []string
	for _, s := range order {
		key := listenKey(&s.cfg.Load().Service)
		if groups[key] == nil {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], s)
	}
	fronts := make(map[string]*front, len(keys))
	for _, key := range keys {
		group := groups[key]
		f := r.listeners[key]
		if f == nil {
			f = &front{r: r}
			f.routes.Store(newRouteTable(group))
			f.start(p.opened[key])
		} else {
			f.routes.Store(newRouteTable(group))
		}
		bound := f.acc.ln.Addr().String()
		for _, s := range group {
			s.front = f
			s.boundAddr.Store(&bound)
		}
		fronts[key] = f
	}
	var closing []*acceptor
	for key, f := range r.listeners {
		if fronts[key] == nil {
			closing = append(closing, f.acc)
		}
	}
	r.listeners = fronts
	return closing
}

// retireServices retires the services of r that keep does not hold (under
// r.mu): their backends are retired while established connections finish;
// then pruneRetired forgets them. (Their addresses stop accepting in
// assignFronts, unless other services listen there.) It returns their names
// and the active checks to remove.
func (r *Runtime) retireServices(keep map[string]*service) (names []string, ops []monitorOp) {
	for name, s := range r.services {
		if keep[name] != nil {
			continue
		}
		names = append(names, name)
		s.front = nil
		drain := s.cfg.Load().Timeouts.Drain
		for _, b := range s.backends {
			ops = append(ops, s.retireBackend(b, drain)...)
		}
		s.backends = map[string]*backend{}
		r.retired = append(r.retired, s)
	}
	return names, ops
}

// applyMonitorOps makes the changes to active checks, outside r.mu. Removals
// go first: a backend replaced by one of the same name at another address
// has the same target ID, and its new check must survive.
func (r *Runtime) applyMonitorOps(ops []monitorOp) {
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
	r.edgeSettings(c, old)
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

// openListener opens a service's listener with Options.Listen. The error
// names the address and the OS error.
func (r *Runtime) openListener(addr string) (*net.TCPListener, error) {
	ln, err := r.listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, unwrapOpError(err))
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		_ = ln.Close()
		return nil, fmt.Errorf("listening on %s: %T is not a TCP listener", addr, ln)
	}
	return tl, nil
}

// Listen opens a listener as the runtime does by default. Multipath TCP is
// turned off: splice and the kernel counters the idle timeout reads need
// plain TCP sockets. Accepted sockets get no TCP keep-alive (as HAProxy's
// default): the idle timeout reaps dead clients, and it saves four system
// calls per connection. The engine's loops accept with accept4 and set no
// keep-alive, so a listener inherited from another process accepts the same.
func Listen(network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), network, addr)
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
