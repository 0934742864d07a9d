package l4

import (
	"fmt"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/health"
)

// reconcileBackends makes want the backends of s, under r.mu, with the
// settings s already has (its service configuration and active checker).
// want need not come from the configuration file, but its names must be
// unique and its weights valid, as config validation ensures. A backend is
// identified by name and address:
//
//   - an unchanged one is the same backend: it keeps its health state,
//     counters, drain flag, operator weight, passive checker and breaker
//     (unless their settings changed) and its connections; only its
//     configured weight, backup flag and limit follow want;
//   - an added one starts healthy before the runtime has started, and
//     pending after (if checks are on): its first active check decides,
//     pending -> healthy (it takes traffic, slow start applies) or
//     pending -> unhealthy (healthy_threshold passing checks bring it in);
//   - a removed one takes no new connection and is forgotten once its
//     connections ended by themselves or at the service's drain timeout.
//
// No established connection is disturbed (only the drain timeout, if set,
// ends a removed backend's). New connections see the new set at once. It returns the backends added, removed and changed (weight,
// backup or limit) as "service/backend", and the changes to active checks,
// which must be made after r.mu is released (r.applyMonitorOps).
func (r *Runtime) reconcileBackends(s *service, want []config.Backend) (added, removed, changed []string, ops []monitorOp) {
	sc := &s.cfg.Load().Service
	hc := sc.HealthCheck
	kept := make(map[string]*backend, len(want))
	all := make([]*backend, 0, len(want))
	for _, bc := range want {
		key := backendKey(bc.Name, bc.Address)
		id := s.name + "/" + bc.Name
		b := s.backends[key]
		var prev *backendSettings
		if b == nil {
			b = s.newBackend(bc, hc, r.started && hc.Enabled)
			r.restorePending(b)
			added = append(added, id)
		} else {
			prev = b.settings
			if b.fileWeight.Load() != int32(bc.Weight) || b.backup.Load() != bc.Backup || b.maxConns.Load() != int64(bc.MaxConnections) {
				changed = append(changed, id)
			}
		}
		b.configure(bc, sc, prev)
		// The check target is (re)added when it does not run with the
		// service's current check settings: s.checkCfg is replaced, with
		// the checker, whenever they change.
		switch {
		case !hc.Enabled && prev != nil && prev.check != nil:
			ops = append(ops, monitorOp{remove: id})
		case hc.Enabled && (prev == nil || prev.check != s.checkCfg):
			ops = append(ops, monitorOp{add: &health.Target{
				ID:       id,
				Address:  b.address,
				Checker:  s.checker,
				Interval: hc.Interval,
				Timeout:  hc.Timeout,
				Status:   b.status,
			}})
		}
		b.settings = &backendSettings{passive: hc.Passive, breaker: sc.Resilience.CircuitBreaker}
		if hc.Enabled {
			b.settings.check = s.checkCfg
		}
		kept[key] = b
		all = append(all, b)
	}
	for key, b := range s.backends {
		if kept[key] == nil {
			removed = append(removed, s.name+"/"+b.name)
			ops = append(ops, s.retireBackend(b, sc.Timeouts.Drain)...)
		}
	}
	s.backends = kept
	set, err := newBackendSet(sc.Algorithm, all, r.rand)
	if err != nil {
		// Unreachable: the algorithm was checked before it was applied.
		panic(fmt.Sprintf("l4: service %s: %v", s.name, err))
	}
	s.set.Store(set)
	s.pruneRemoved()
	return added, removed, changed, ops
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
