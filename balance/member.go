package balance

import "math"

// Member is the balancer's view of one backend; the data path's backend type
// implements it. All three methods are called on the hot path, for many members
// per pick, and must be cheap (atomic loads) and safe for concurrent use.
type Member interface {
	// EffectiveWeight is the weight now. Slow start may make it fractional; a
	// weight <= 0 (or NaN, or infinite) takes no connection.
	EffectiveWeight() float64
	// ActiveConnections is the number of established connections now.
	ActiveConnections() int64
	// Eligible reports whether the member may take a new connection: healthy,
	// not draining, circuit breaker ready, under its connection limit.
	Eligible() bool
}

// Named is implemented by members that have a stable name (a backend's name is
// unique within its service). source_hash places a member's points on its ring by
// this name, so a picker rebuilt after a reload that adds, removes or reorders
// other members keeps every surviving member's keys. A member without a name is
// placed by its index in the slice given to New, which is stable only while the
// members before it stay the same.
type Named interface {
	Name() string
}

// Ramped is implemented by members whose EffectiveWeight ramps up during slow
// start. TargetWeight is the weight the ramp ends at (the operator's weight, or
// the configured one). source_hash sizes a member's share of its ring by
// TargetWeight and, while the ramp lasts, admits a growing, stable fraction
// (EffectiveWeight/TargetWeight) of that share, so a ramping member gains keys
// gradually and keeps them. Without it, the ring is sized by the EffectiveWeight
// seen when the picker was built.
type Ramped interface {
	TargetWeight() float64
}

// usableWeight returns m's weight when m may take a new connection now, and 0
// when it may not: ineligible, or a weight that is not a positive finite number.
func usableWeight(m Member) float64 {
	w := m.EffectiveWeight()
	if !(w > 0) || w > math.MaxFloat64 || !m.Eligible() {
		return 0
	}
	return w
}

// buildWeight is the weight a member stands for in a structure built once per
// picker: TargetWeight when the member ramps, else its EffectiveWeight now.
// Eligibility does not matter (an ineligible member may come back); a weight that
// is not a positive finite number gives 0.
func buildWeight(m Member) float64 {
	w := m.EffectiveWeight()
	if r, ok := m.(Ramped); ok {
		w = r.TargetWeight()
	}
	if !(w > 0) || w > math.MaxFloat64 {
		return 0
	}
	return w
}

// active is m's active connection count as a float, never negative.
func active(m Member) float64 {
	return float64(max(m.ActiveConnections(), 0))
}
