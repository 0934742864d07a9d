package balance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Algorithm names, as written in the configuration file.
const (
	RoundRobin       = "round_robin"
	LeastConnections = "least_connections"
	RandomTwo        = "random_two"
	SourceHash       = "source_hash"
)

// ErrUnknownAlgorithm is returned by New for a name it does not know.
var ErrUnknownAlgorithm = errors.New("balance: unknown algorithm")

// Picker chooses a member for a new connection. It is safe for concurrent use.
type Picker interface {
	// Pick returns the index in members of the chosen member, among those that are
	// Eligible, have an EffectiveWeight > 0 and are not in skip (which may be nil),
	// or -1 when there is none. key is the client's IP address (source_hash uses
	// it; the others ignore it).
	Pick(key []byte, skip *Tried) int
}

// New builds a picker over members. The picker owns the slice afterwards: a
// membership change (a reload, an operator weight change) builds a new picker.
// rnd is a source of uniformly random 64-bit values, safe for concurrent use,
// used by random_two; nil means math/rand/v2's Uint64.
func New(algorithm string, members []Member, rnd func() uint64) (Picker, error) {
	if len(members) > math.MaxInt32 {
		return nil, fmt.Errorf("building %s picker: %d members, at most %d", algorithm, len(members), math.MaxInt32)
	}
	for i, m := range members {
		if m == nil {
			return nil, fmt.Errorf("building %s picker: member %d is nil", algorithm, i)
		}
	}
	if rnd == nil {
		rnd = rand.Uint64
	}
	switch algorithm {
	case RoundRobin:
		return newSmoothWRR(members), nil
	case LeastConnections:
		return newLeastConnections(members), nil
	case RandomTwo:
		return newRandomTwo(members, rnd), nil
	case SourceHash:
		return newSourceHash(members), nil
	}
	return nil, fmt.Errorf("%w %q (want %s, %s, %s or %s)",
		ErrUnknownAlgorithm, algorithm, RoundRobin, LeastConnections, RandomTwo, SourceHash)
}
