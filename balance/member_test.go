package balance

import (
	"math"
	"sync/atomic"
)

// fakeMember is a Member whose state the test sets; atomics keep it race-free
// when a test flips it while other goroutines pick.
type fakeMember struct {
	weight     atomic.Uint64 // float64 bits
	active     atomic.Int64
	ineligible atomic.Bool
}

func newFake(weight float64) *fakeMember {
	m := &fakeMember{}
	m.setWeight(weight)
	return m
}

func (m *fakeMember) EffectiveWeight() float64 { return math.Float64frombits(m.weight.Load()) }
func (m *fakeMember) ActiveConnections() int64 { return m.active.Load() }
func (m *fakeMember) Eligible() bool           { return !m.ineligible.Load() }
func (m *fakeMember) setWeight(w float64)      { m.weight.Store(math.Float64bits(w)) }

// namedMember adds a stable name (Named).
type namedMember struct {
	*fakeMember
	name string
}

func (m namedMember) Name() string { return m.name }

// rampedMember adds a slow-start target (Ramped).
type rampedMember struct {
	*fakeMember
	target float64
}

func (m rampedMember) TargetWeight() float64 { return m.target }

// fakes builds one fake member per weight.
func fakes(weights ...float64) ([]Member, []*fakeMember) {
	members := make([]Member, len(weights))
	fs := make([]*fakeMember, len(weights))
	for i, w := range weights {
		fs[i] = newFake(w)
		members[i] = fs[i]
	}
	return members, fs
}

// seededRand is a deterministic rnd for New, safe for concurrent use.
func seededRand(seed uint64) func() uint64 {
	var state atomic.Uint64
	state.Store(seed)
	return func() uint64 {
		// SplitMix64: one atomic add per draw.
		return mix64(state.Add(0x9e3779b97f4a7c15))
	}
}
