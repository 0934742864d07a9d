package balance

import (
	"cmp"
	"math"
	"slices"
)

// sourceHash maps a client address to a member by consistent hashing.
//
// New places every member on a ring of 64-bit positions, eligible or not, with
// pointsPerWeight points per unit of weight (a weight-2 member owns twice the
// ring). Pick hashes the key, finds the first point at or after it and walks
// clockwise past points whose member is ineligible, weightless or skipped. So:
//   - while the usable members stay the same, a key always lands on the same one;
//   - when a member leaves, only the keys that landed on it move (to the next
//     usable point, spread over the others); a key whose member is still usable
//     never moves, because nothing before its point changed;
//   - when the member comes back, exactly those keys return to it.
//
// The ring is sized by the weights when the picker is built (TargetWeight for
// Ramped members, else EffectiveWeight), so the caller rebuilds the picker when a
// configured or operator weight changes; a member weightless at build time has
// no point and takes no key until then. Slow start still works without a
// rebuild: a Ramped member whose EffectiveWeight is a fraction f of its
// TargetWeight admits a key only when the key's own hash against that member
// falls below f, so it takes a share f of its keys, and the keys it admits at f
// it keeps at every larger f (the other keys pass on clockwise, as if it were
// absent).
type sourceHash struct {
	members []Member
	points  []uint64  // sorted ring positions
	owners  []int32   // owners[k] is the member index at points[k]
	full    []float64 // weight each member's points stand for
	seeds   []uint64  // per-member hash seed, from its name or index
}

var _ Picker = (*sourceHash)(nil)

const (
	// pointsPerWeight is the number of ring points per unit of weight. A
	// member's share of the keys strays from its weight's share by about
	// 1/sqrt(points) (measured: 7% at 160 points, 3% at 1000), so a weight-1
	// member gets 1000. A member's points do not depend on the others', so a
	// reload that changes one member's weight moves only keys to or from it.
	pointsPerWeight = 1000
	// maxRingPoints caps the ring at 3 MiB (12 bytes a point) and its build at
	// a few tens of milliseconds; past it every member's count scales down in
	// proportion, each keeping at least one point.
	maxRingPoints = 1 << 18
	// probeLimit is how many points Pick walks before it checks, in O(members),
	// that some member is usable at all, so a pool that is entirely down costs
	// one pass over the members instead of a walk around the whole ring.
	probeLimit = 32
)

func newSourceHash(members []Member) *sourceHash {
	p := &sourceHash{
		members: members,
		full:    make([]float64, len(members)),
		seeds:   make([]uint64, len(members)),
	}
	sum := 0.0
	for i, m := range members {
		p.full[i] = buildWeight(m)
		sum += p.full[i]
		if n, ok := m.(Named); ok {
			p.seeds[i] = hashBytes([]byte(n.Name()))
		} else {
			p.seeds[i] = mix64(uint64(i) + 0x9e3779b97f4a7c15)
		}
	}
	scale := float64(pointsPerWeight)
	if sum*scale > maxRingPoints {
		scale = maxRingPoints / sum
	}
	type point struct {
		pos   uint64
		owner int32
	}
	counts := make([]int, len(members))
	total := 0
	for i, w := range p.full {
		if w > 0 {
			counts[i] = max(1, int(math.Round(w*scale)))
			total += counts[i]
		}
	}
	ring := make([]point, 0, total)
	for i, n := range counts {
		for j := range n {
			ring = append(ring, point{mix64(p.seeds[i] + uint64(j+1)*0x9e3779b97f4a7c15), int32(i)})
		}
	}
	// Ties on position (vanishingly rare, or two members with one name) go to
	// the lower index, deterministically.
	slices.SortFunc(ring, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.owner, b.owner))
	})
	p.points = make([]uint64, len(ring))
	p.owners = make([]int32, len(ring))
	for k, pt := range ring {
		p.points[k], p.owners[k] = pt.pos, pt.owner
	}
	return p
}

func (p *sourceHash) Pick(key []byte, skip *Tried) int {
	n := len(p.points)
	if n == 0 {
		return -1
	}
	h := hashKey(key)
	start, _ := slices.BinarySearch(p.points, h)
	if start == n {
		start = 0
	}
	k := start
	for step := range n {
		if step == probeLimit && !p.anyUsable(skip) {
			return -1
		}
		i := int(p.owners[k])
		if !skip.Has(i) {
			if w := usableWeight(p.members[i]); w > 0 && p.admits(h, i, w) {
				return i
			}
		}
		if k++; k == n {
			k = 0
		}
	}
	// Every usable member is ramping up and none admitted this key yet: take the
	// first usable one clockwise, which is just as stable.
	k = start
	for range n {
		if i := int(p.owners[k]); !skip.Has(i) && usableWeight(p.members[i]) > 0 {
			return i
		}
		if k++; k == n {
			k = 0
		}
	}
	return -1
}

// admits reports whether member i, at weight w now, takes the key hashed to h:
// always at its full weight, else for the stable fraction w/full of keys.
func (p *sourceHash) admits(h uint64, i int, w float64) bool {
	full := p.full[i]
	if w >= full {
		return true
	}
	return float64(mix64(h^p.seeds[i])>>11)*0x1p-53*full < w
}

func (p *sourceHash) anyUsable(skip *Tried) bool {
	for i, m := range p.members {
		if !skip.Has(i) && usableWeight(m) > 0 {
			return true
		}
	}
	return false
}

// hashKey hashes a client address. An IPv4-mapped IPv6 address hashes like its
// 4-byte IPv4 form, so a client keeps its member whichever form the listener or
// a PROXY header reports.
func hashKey(key []byte) uint64 {
	if len(key) == 16 && isV4InV6Prefix(key[:12]) {
		key = key[12:]
	}
	return hashBytes(key)
}

func isV4InV6Prefix(b []byte) bool {
	for _, c := range b[:10] {
		if c != 0 {
			return false
		}
	}
	return b[10] == 0xff && b[11] == 0xff
}

// hashBytes is 64-bit FNV-1a followed by mix64: FNV-1a is quick on the short
// keys used here (4 or 16 bytes) but mixes its high bits poorly, which a ring
// sorted by the full 64 bits needs; the finaliser fixes that.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the SplitMix64 finaliser: a bijection on uint64 whose every output bit
// depends on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
