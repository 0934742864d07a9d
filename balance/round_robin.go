package balance

import "sync"

// smoothWRR is nginx's smooth weighted round robin. Each pick adds every usable
// member's weight to its current value, takes the member with the highest
// current value (the first one on a tie) and subtracts the total weight from it.
// Heavy members are spread out instead of coming in bursts:
//
//	weights {a:5, b:1, c:1}  ->  a a b a c a a   (then again)
//	weights {a:3, b:1}       ->  a a b a
//
// A member that is ineligible, weightless or skipped keeps its current value
// untouched, so the others' sequence goes on as if it were not there. Weights
// may be fractional (slow start). Integer weights keep the arithmetic exact.
//
// The current values are the only shared mutable state of any algorithm; one
// short mutex per pick guards them.
type smoothWRR struct {
	members []Member

	mu      sync.Mutex
	current []float64 // guarded by mu
}

var _ Picker = (*smoothWRR)(nil)

func newSmoothWRR(members []Member) *smoothWRR {
	return &smoothWRR{members: members, current: make([]float64, len(members))}
}

func (p *smoothWRR) Pick(_ []byte, skip *Tried) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, 0.0
	for i, m := range p.members {
		if skip.Has(i) {
			continue
		}
		w := usableWeight(m)
		if w == 0 {
			continue
		}
		p.current[i] += w
		total += w
		if best < 0 || p.current[i] > p.current[best] {
			best = i
		}
	}
	if best >= 0 {
		p.current[best] -= total
	}
	return best
}
