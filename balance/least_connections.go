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
	best, tied := -1, false
	var bestActive, bestWeight float64
	for range n {
		if !skip.Has(i) {
			m := p.members[i]
			if w := usableWeight(m); w > 0 {
				a := active(m)
				// Compare a/w with bestActive/bestWeight, without dividing.
				switch l, r := a*bestWeight, bestActive*w; {
				case best < 0 || l < r:
					best, tied = i, false
					bestActive, bestWeight = a, w
				case l == r:
					tied = true
				}
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	// Move the cursor only when it decided something: a shared write per pick
	// would bounce its cache line between cores for nothing.
	if tied {
		p.next.Store(uint64(best) + 1)
	}
	return best
}
