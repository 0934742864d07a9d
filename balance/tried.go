package balance

import "math/bits"

// Tried is the set of member indexes a client connection has already attempted,
// so a connect retry goes to a different member. The zero value is empty and
// ready to use; a nil *Tried is an empty set to Has and Len.
//
// Indexes below 64 live in one word inside the struct: Add and Has never
// allocate for services of up to 64 members, which covers nearly all. For larger
// services the first Add of an index >= 64 grows a slice once, to the word that
// index needs: at most one small allocation per connection that retries, and
// nothing for connections whose first attempt succeeds. A sync.Pool of bitsets
// was rejected: it would need a Release call on every path that ends a
// connection, for a saving only the rare retry above index 63 sees.
type Tried struct {
	low  uint64   // indexes 0..63
	high []uint64 // indexes 64 and up: high[k] holds 64(k+1)..64(k+1)+63
}

// Add puts index i into the set. A negative i (Pick's "none") is ignored.
func (t *Tried) Add(i int) {
	if i < 0 {
		return
	}
	if i < 64 {
		t.low |= 1 << uint(i)
		return
	}
	k := i/64 - 1
	if k >= len(t.high) {
		t.high = append(t.high, make([]uint64, k+1-len(t.high))...)
	}
	t.high[k] |= 1 << uint(i%64)
}

// Has reports whether index i is in the set.
func (t *Tried) Has(i int) bool {
	if t == nil || i < 0 {
		return false
	}
	if i < 64 {
		return t.low&(1<<uint(i)) != 0
	}
	k := i/64 - 1
	return k < len(t.high) && t.high[k]&(1<<uint(i%64)) != 0
}

// Len is the number of indexes in the set.
func (t *Tried) Len() int {
	if t == nil {
		return 0
	}
	n := bits.OnesCount64(t.low)
	for _, w := range t.high {
		n += bits.OnesCount64(w)
	}
	return n
}

// Reset empties the set, keeping any words it grew for reuse.
func (t *Tried) Reset() {
	t.low = 0
	clear(t.high)
}
