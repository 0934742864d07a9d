package l4

import (
	"fmt"
	"slices"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/status"
)

// SetDiscovered makes bs the backends that one discovery source (identified
// by config.Discovery.Key) found for a service, and reconciles the service's
// backends at once: a new one takes traffic after its first passing check, a
// missing one is retired as a reload retires it, an unchanged one keeps its
// state and connections. A name that is already a static backend's, or an
// earlier source's, is skipped with a logged error. It returns what changed.
func (r *Runtime) SetDiscovered(service, source, by string, bs []config.Backend) (status.Reload, error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return status.Reload{}, ErrShutdown
	}
	s := r.services[service]
	if s == nil {
		r.mu.Unlock()
		return status.Reload{}, fmt.Errorf("service %q: %w", service, status.ErrNotFound)
	}
	sc := &s.cfg.Load().Service
	if !slices.ContainsFunc(sc.Discovery, func(d config.Discovery) bool { return d.Key() == source }) {
		r.mu.Unlock()
		return status.Reload{}, fmt.Errorf("service %q has no such discovery source: %w", service, status.ErrNotFound)
	}
	if s.discovered == nil {
		s.discovered = map[string][]config.Backend{}
	}
	s.discovered[source] = slices.Clone(bs)
	var rl status.Reload
	var ops []monitorOp
	rl.BackendsAdded, rl.BackendsRemoved, rl.BackendsChanged, ops = r.reconcileBackends(s, s.wantBackendsLocked(sc))
	var found []*backend
	for _, id := range rl.BackendsAdded {
		for _, b := range s.backends {
			if s.name+"/"+b.name == id {
				found = append(found, b)
			}
		}
	}
	r.mu.Unlock()
	// The event goes first, so a fast first check comes after it in the history.
	for _, b := range found {
		b.status.AddEvent(health.Event{Time: b.now(), From: "absent", To: "discovered", Reason: "found by " + by})
	}
	r.applyMonitorOps(ops)
	if len(rl.BackendsAdded)+len(rl.BackendsRemoved)+len(rl.BackendsChanged) > 0 {
		r.log.Info().Str("service", service).Str("by", by).Strs("backends_added", rl.BackendsAdded).
			Strs("backends_removed", rl.BackendsRemoved).Strs("backends_changed", rl.BackendsChanged).
			Msg("discovered backends changed")
	}
	return rl, nil
}

// wantBackendsLocked is every backend sc asks for: its static ones, then
// what each of its discovery sources found. Sets from sources sc no longer
// has are dropped (a changed discovery block starts again from nothing).
func (s *service) wantBackendsLocked(sc *config.Service) []config.Backend {
	want := slices.Clone(sc.Backends)
	if len(s.discovered) == 0 {
		return want
	}
	names := make(map[string]bool, len(want))
	for _, b := range want {
		names[b.Name] = true
	}
	keep := map[string]bool{}
	for _, d := range sc.Discovery {
		key := d.Key()
		keep[key] = true
		for _, b := range s.discovered[key] {
			if names[b.Name] {
				s.r.log.Error().Str("service", s.name).Str("backend", b.Name).Str("source", d.Type+" "+d.Name).
					Msg("discovered backend skipped: a backend of that name already exists")
				continue
			}
			names[b.Name] = true
			want = append(want, b)
		}
	}
	for key := range s.discovered {
		if !keep[key] {
			delete(s.discovered, key)
		}
	}
	return want
}
