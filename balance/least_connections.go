package balance

import "sync/atomic"

// leastConnections picks the usable member with the lowest
// ActiveConnections/EffectiveWeight: a weight-2 member carries twice the
// connections of a weight-1 one. Ties (idle members, typically) go to the first
// tied member after a start offset that rotates with every pick, so idle members
// take turns instead of the first one taking everything.
//
// It is lock-free: the only shared state is the atomic start counter.
type leastConnections struct {
	members []Member
	next    atomic.Uint64 // where the next pick's scan starts: after the last pick
}

var _ Picker = (*leastConnections)(nil)

func newLeastConnections(members []Member) *leastConnections {
	return &leastConnections{members: members}
}

func (p *leastConnections) Pick(_ []byte, skip *Tried) int {
	n := len(p.members)
	if n == 0 {
		return -1
	}
	i := int(p.next.Load() % uint64(n))
	best := -1
	var bestActive, bestWeight float64
	for range n {
		if !skip.Has(i) {
			m := p.members[i]
			if w := usableWeight(m); w > 0 {
				a := active(m)
				// a/w < bestActive/bestWeight, without dividing.
				if best < 0 || a*bestWeight < bestActive*w {
					best, bestActive, bestWeight = i, a, w
				}
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	if best >= 0 {
		p.next.Store(uint64(best) + 1)
	}
	return best
}
