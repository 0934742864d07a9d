package l4

import (
	"fmt"

	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/status"
)

// OperatorState is what operators changed through the API (drain flags and
// weights), for the state file. Backends are keyed by service, name and
// address: a backend whose address changed is a new backend.
type OperatorState struct {
	Backends []OperatorBackend `json:"backends"`
}

// OperatorBackend is one backend's operator state.
type OperatorBackend struct {
	Service string `json:"service"`
	Backend string `json:"backend"`
	Address string `json:"address"`
	Drained bool   `json:"drained"`
	Weight  *int   `json:"weight"` // nil = the file's weight
}

// MaxWeight is the largest weight a backend may have.
const MaxWeight = 256

// lookup finds a service and one of its current backends.
func (r *Runtime) lookup(service, name string) (*service, *backend, error) {
	s := r.service(service)
	if s == nil {
		return nil, nil, fmt.Errorf("service %q: %w", service, status.ErrNotFound)
	}
	for _, b := range s.set.Load().all {
		if b.name == name {
			return s, b, nil
		}
	}
	return nil, nil, fmt.Errorf("backend %q of service %q: %w", name, service, status.ErrNotFound)
}

// Drain stops new connections to a backend; established ones go on (until
// timeouts.drain, when set). It is idempotent. by says who asked.
func (r *Runtime) Drain(service, backend, by string) (status.Backend, error) {
	s, b, err := r.lookup(service, backend)
	if err != nil {
		return status.Backend{}, err
	}
	if s.setDrain(b, true, "drained by "+by) {
		r.operatorChanged()
	}
	return s.backendView(b), nil
}

// Undrain lets a drained backend take connections again, if its checks
// say it is healthy. It is idempotent.
func (r *Runtime) Undrain(service, backend, by string) (status.Backend, error) {
	s, b, err := r.lookup(service, backend)
	if err != nil {
		return status.Backend{}, err
	}
	if s.setDrain(b, false, "undrained by "+by) {
		r.operatorChanged()
	}
	return s.backendView(b), nil
}

// setDrain starts or stops draining b (with the service's drain timer) and
// reports whether that changed anything.
func (s *service) setDrain(b *backend, drain bool, reason string) bool {
	if drain {
		if !b.status.Drain(reason) {
			return false
		}
		b.startDrainTimer(s.cfg.Load().Timeouts.Drain)
		return true
	}
	if !b.status.Undrain(reason) {
		return false
	}
	b.stopDrainTimer()
	return true
}

// Disconnect resets a backend's established connections now; the backend
// stays eligible. It returns how many it closed.
func (r *Runtime) Disconnect(service, backend, by string) (int, error) {
	s, b, err := r.lookup(service, backend)
	if err != nil {
		return 0, err
	}
	n := b.abortAll(endDisconnected)
	b.status.AddEvent(health.Event{Time: b.now(), From: "connected", To: "disconnected",
		Reason: fmt.Sprintf("%d connections closed by %s", n, by)})
	r.log.Info().Str("service", s.name).Str("backend", b.name).Str("by", by).Int("connections", n).
		Msg("disconnected backend connections")
	return n, nil
}

// SetWeight sets the operator's weight (0..256), which overrides the file's
// through reloads until it is set again or the backend is removed.
func (r *Runtime) SetWeight(service, backend string, weight int, by string) (status.Backend, error) {
	if weight < 0 || weight > MaxWeight {
		return status.Backend{}, fmt.Errorf("weight %d outside 0..%d: %w", weight, MaxWeight, status.ErrInvalid)
	}
	s, b, err := r.lookup(service, backend)
	if err != nil {
		return status.Backend{}, err
	}
	if r.setWeight(s, b, int32(weight), "set by "+by) {
		r.operatorChanged()
	}
	return s.backendView(b), nil
}

// setWeight sets b's operator weight (-1 = the file's) and records it; it
// reports whether the weight changed.
func (r *Runtime) setWeight(s *service, b *backend, weight int32, reason string) bool {
	r.mu.Lock()
	old := b.opWeight.Swap(weight)
	changed := old != weight
	if changed {
		r.rebuildSetLocked(s)
	}
	r.mu.Unlock()
	if !changed {
		return false
	}
	name := func(w int32) string {
		if w < 0 {
			return "file weight"
		}
		return fmt.Sprintf("weight %d", w)
	}
	b.status.AddEvent(health.Event{Time: b.now(), From: name(old), To: name(weight), Reason: reason})
	r.log.Info().Str("service", s.name).Str("backend", b.name).Str("reason", reason).Str("weight", name(weight)).
		Msg("backend weight set")
	return true
}

// SetOperator makes a backend's drain flag and operator weight (nil = the
// file's) exactly these, for operator state kept outside this process (a
// fleet's). It reports whether anything changed; reason goes to the events.
func (r *Runtime) SetOperator(service, backend string, drain bool, weight *int, reason string) (bool, error) {
	s, b, err := r.lookup(service, backend)
	if err != nil {
		return false, err
	}
	w := int32(-1)
	if weight != nil {
		if *weight < 0 || *weight > MaxWeight {
			return false, fmt.Errorf("weight %d outside 0..%d: %w", *weight, MaxWeight, status.ErrInvalid)
		}
		w = int32(*weight)
	}
	changed := s.setDrain(b, drain, reason)
	changed = r.setWeight(s, b, w, reason) || changed
	if changed {
		r.operatorChanged()
	}
	return changed, nil
}

// rebuildSetLocked rebuilds a service's pickers after a weight change
// (source_hash sizes its ring by weight).
func (r *Runtime) rebuildSetLocked(s *service) {
	set := s.set.Load()
	next, err := newBackendSet(s.cfg.Load().Algorithm, set.all, r.rand)
	if err != nil {
		r.log.Error().Err(err).Str("service", s.name).Msg("rebuilding backend set")
		return
	}
	s.set.Store(next)
}

// OperatorState returns the drain flags and operator weights to persist.
func (r *Runtime) OperatorState() OperatorState {
	r.mu.Lock()
	order := append([]*service(nil), r.order...)
	r.mu.Unlock()
	st := OperatorState{Backends: []OperatorBackend{}}
	for _, s := range order {
		for _, b := range s.set.Load().all {
			ob := OperatorBackend{Service: s.name, Backend: b.name, Address: b.address, Drained: b.status.Draining()}
			if w := b.opWeight.Load(); w >= 0 {
				ob.Weight = new(int(w))
			}
			if ob.Drained || ob.Weight != nil {
				st.Backends = append(st.Backends, ob)
			}
		}
	}
	return st
}

// RestoreOperatorState applies saved drain flags and weights to the
// matching backends; entries that match none are ignored. Called before the
// first Apply, it takes effect as the backends are created, before the first
// connection is accepted.
func (r *Runtime) RestoreOperatorState(st OperatorState) {
	r.mu.Lock()
	if !r.started {
		r.pending = &st
		r.mu.Unlock()
		return
	}
	for _, s := range r.order {
		changed := false
		for _, b := range s.set.Load().all {
			if ob, ok := findOperator(&st, s.name, b); ok {
				changed = applyOperator(b, ob) || changed
			}
		}
		if changed {
			r.rebuildSetLocked(s)
		}
	}
	r.mu.Unlock()
}

// restorePending applies the state restored before the first Apply to a
// backend being created (under r.mu).
func (r *Runtime) restorePending(b *backend) {
	if r.pending == nil {
		return
	}
	if ob, ok := findOperator(r.pending, b.svc.name, b); ok {
		applyOperator(b, ob)
	}
}

func findOperator(st *OperatorState, service string, b *backend) (OperatorBackend, bool) {
	for _, ob := range st.Backends {
		if ob.Service == service && ob.Backend == b.name && ob.Address == b.address {
			return ob, true
		}
	}
	return OperatorBackend{}, false
}

// applyOperator sets b's drain flag and weight; it reports whether the
// weight changed.
func applyOperator(b *backend, ob OperatorBackend) bool {
	if ob.Drained {
		b.status.Drain("restored from the state file")
	}
	if ob.Weight == nil || *ob.Weight < 0 || *ob.Weight > MaxWeight {
		return false
	}
	return b.opWeight.Swap(int32(*ob.Weight)) != int32(*ob.Weight)
}

// OnOperatorChange registers fn, called (outside any lock) after every
// drain, undrain or weight change.
func (r *Runtime) OnOperatorChange(fn func()) {
	r.mu.Lock()
	r.onOp = append(r.onOp, fn)
	r.mu.Unlock()
}

func (r *Runtime) operatorChanged() {
	r.mu.Lock()
	fns := append([]func(){}, r.onOp...)
	r.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
