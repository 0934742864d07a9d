package balance

import (
	"math"
	"sync/atomic"
)

// randomTwo is the power of two choices. It samples two distinct usable members,
// each with probability proportional to its weight, and takes the one with the
// lower ActiveConnections/EffectiveWeight; on a tie it takes the first sample.
//
// Weights count twice on purpose. Sampling by weight makes an idle pool (every
// load 0, every comparison a tie) share connections in proportion to weight,
// which uniform sampling would not; comparing load per weight makes a loaded pool
// converge to connections in proportion to weight.
//
// Sampling is rejection sampling: draw a member uniformly and keep it with
// probability weight/bound, where bound is the largest usable weight seen. That
// costs O(1) expected draws while most members are usable. After a few rejected
// draws (many ineligible or skipped members) it falls back to an exact O(n)
// weighted draw, which also resets bound to the current largest weight. While
// bound is at least every usable weight, both paths give the same distribution,
// so the fallback changes only the cost. A weight that rises past bound (slow
// start ending) is kept at once and lifts bound: one draw's worth of bias.
//
// It is lock-free: rnd must be safe for concurrent use, and bound is an atomic.
type randomTwo struct {
	members []Member
	rnd     func() uint64
	bound   atomic.Uint64 // float64 bits: largest usable weight seen
}

var _ Picker = (*randomTwo)(nil)

// sampleTries is how many uniform draws a rejection sample makes before it falls
// back to the exact draw. With every member usable and equal weights the first
// draw is kept; with half the weight unusable, 8 draws all fail 0.4% of the time.
const sampleTries = 8

func newRandomTwo(members []Member, rnd func() uint64) *randomTwo {
	p := &randomTwo{members: members, rnd: rnd}
	top := 0.0
	for _, m := range members {
		top = max(top, buildWeight(m))
	}
	p.bound.Store(math.Float64bits(top))
	return p
}

func (p *randomTwo) Pick(_ []byte, skip *Tried) int {
	a, wa := p.sample(skip, -1)
	if a < 0 {
		return -1
	}
	b, wb := p.sample(skip, a)
	if b < 0 {
		return a
	}
	// active(b)/wb < active(a)/wa, without dividing.
	if active(p.members[b])*wa < active(p.members[a])*wb {
		return b
	}
	return a
}

// sample draws one usable member not in skip and not exclude, with probability
// proportional to its weight, and returns its index and weight, or -1.
func (p *randomTwo) sample(skip *Tried, exclude int) (int, float64) {
	n := uint64(len(p.members))
	if n == 0 {
		return -1, 0
	}
	bound := math.Float64frombits(p.bound.Load())
	if bound > 0 {
		for range sampleTries {
			r := p.rnd()
			i := int((r >> 32) * n >> 32) // high half: uniform index in [0, n)
			if i == exclude || skip.Has(i) {
				continue
			}
			w := usableWeight(p.members[i])
			if w == 0 {
				continue
			}
			if w >= bound {
				p.raiseBound(w)
				return i, w
			}
			if float64(uint32(r))*0x1p-32*bound < w { // low half: keep with probability w/bound
				return i, w
			}
		}
	}
	return p.sampleExact(skip, exclude)
}

// sampleExact is sample's exact O(n) fallback.
func (p *randomTwo) sampleExact(skip *Tried, exclude int) (int, float64) {
	total, top := 0.0, 0.0
	for i, m := range p.members {
		w := usableWeight(m)
		top = max(top, w)
		if i != exclude && !skip.Has(i) {
			total += w
		}
	}
	if top > 0 {
		p.bound.Store(math.Float64bits(top))
	}
	if total == 0 {
		return -1, 0
	}
	target := float64(p.rnd()>>11) * 0x1p-53 * total
	last, lastWeight := -1, 0.0
	for i, m := range p.members {
		if i == exclude || skip.Has(i) {
			continue
		}
		w := usableWeight(m)
		if w == 0 {
			continue
		}
		if target < w {
			return i, w
		}
		target -= w
		last, lastWeight = i, w
	}
	// Rounding, or members that changed between the two passes.
	return last, lastWeight
}

// raiseBound lifts bound to w if w is larger.
func (p *randomTwo) raiseBound(w float64) {
	for {
		old := p.bound.Load()
		if math.Float64frombits(old) >= w || p.bound.CompareAndSwap(old, math.Float64bits(w)) {
			return
		}
	}
}
