package l4

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync"
)

// clientTable keeps, per client address, the connections it has open and a
// token bucket of new connections, for a service's
// max_connections_per_client and connection_rate_per_client.
//
// It is a fixed array of clientSets sets of clientWays slots (65 536
// clients, 2 MiB, allocated once): an address hashes, with a seed of the
// table's, to one set and lives in one of its slots. Checking a client locks
// only its set's stripe (one of clientLocks), scans eight slots and
// allocates nothing; nothing is done per message, only at accept and close.
//
// The bucket is kept as one time (GCRA, the generic cell rate algorithm):
// tat is when the bucket will be full again. A connection is allowed when,
// after taking its token, the bucket is not overdrawn: max(tat, now) +
// interval - now <= burst × interval. A new client starts full, so it may
// open burst connections at once, then one per interval.
//
// Forgetting: a client with no connection open whose bucket has refilled
// (tat <= now) is as good as absent, and its slot is free for the next new
// client of its set. When a set has no free slot, the idle client whose
// bucket is the fullest (lowest tat) is forgotten, which costs it at most
// the tokens it had spent. Clients with connections open are never
// forgotten (their count must come back down); when all eight slots of a
// set hold such clients, a new client of that set is admitted without
// per-client accounting (an empty ticket under a connection limit), as
// HAProxy does when its stick table is full.
type clientTable struct {
	seed  [2]uint64
	locks [clientLocks]stripe
	slots []clientSlot // clientSets × clientWays
}

const (
	clientWays  = 8
	clientSets  = 8192 // a power of two
	clientLocks = 256  // sets share a lock: set i takes locks[i % clientLocks]
)

// stripe is a mutex on a cache line of its own.
type stripe struct {
	sync.Mutex
	_ [64 - 8]byte
}

// clientSlot is one client. 32 bytes and no pointers: the garbage
// collector never scans the table.
type clientSlot struct {
	addr   [16]byte // IPv4 as ::ffff:a.b.c.d
	tat    int64    // ns on the runtime's clock; <= now: the bucket is full
	active int32    // connections open (counted only under a connection limit)
	used   bool
}

// clientLimits is what a service asks of each client, from its settings.
type clientLimits struct {
	maxConns int32 // 0 = unlimited
	interval int64 // ns a token takes to come back; 0 = no rate limit
	burst    int64 // the bucket's size: the rate's count
}

// clientTicket is a connection's hold on its client's slot, given back by
// release when it ends. The zero ticket holds nothing.
type clientTicket struct {
	t    *clientTable
	addr [16]byte
}

func newClientTable(seed0, seed1 uint64) *clientTable {
	return &clientTable{seed: [2]uint64{seed0, seed1}, slots: make([]clientSlot, clientSets*clientWays)}
}

// admit decides, at now (ns), whether client a may open a connection. When
// it may, the connection is counted (and must be released, if the ticket
// holds anything); when not, nothing changes and the error says which
// limit it met.
func (t *clientTable) admit(a netip.Addr, now int64, l clientLimits) (clientTicket, error) {
	key := a.As16()
	set := t.setOf(key)
	mu := &t.locks[set%clientLocks]
	ways := t.slots[set*clientWays : set*clientWays+clientWays]
	mu.Lock()
	var e, free, idle *clientSlot
	for i := range ways {
		w := &ways[i]
		switch {
		case w.used && w.addr == key:
			e = w
		case !w.used || w.active == 0 && w.tat <= now:
			if free == nil {
				free = w
			}
		case w.active == 0 && (idle == nil || w.tat < idle.tat):
			idle = w
		}
	}
	if e == nil {
		if free == nil {
			free = idle
		}
		if free == nil {
			mu.Unlock()
			return clientTicket{}, nil
		}
		e = free
		*e = clientSlot{addr: key, tat: now, used: true}
	}
	if l.maxConns > 0 && e.active >= l.maxConns {
		mu.Unlock()
		return clientTicket{}, errClientConns
	}
	if l.interval > 0 {
		tat := max(e.tat, now) + l.interval
		if tat-now > l.burst*l.interval {
			mu.Unlock()
			return clientTicket{}, errClientRate
		}
		e.tat = tat
	}
	if l.maxConns == 0 {
		mu.Unlock()
		return clientTicket{}, nil
	}
	e.active++
	mu.Unlock()
	return clientTicket{t: t, addr: key}, nil
}

// release gives back a connection's hold at now (ns). A client left with no
// connection and a full bucket is forgotten at once.
func (k clientTicket) release(now int64) {
	t := k.t
	if t == nil {
		return
	}
	set := t.setOf(k.addr)
	mu := &t.locks[set%clientLocks]
	ways := t.slots[set*clientWays : set*clientWays+clientWays]
	mu.Lock()
	for i := range ways {
		w := &ways[i]
		if w.used && w.addr == k.addr {
			if w.active--; w.active == 0 && w.tat <= now {
				w.used = false
			}
			break
		}
	}
	mu.Unlock()
}

// setOf hashes an address to its set: a 64×64→128-bit multiply of the
// seeded halves, folded, then mixed (splitmix64's finaliser). Without the
// seed an attacker cannot aim many addresses at one set.
func (t *clientTable) setOf(addr [16]byte) int {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(addr[:8])^t.seed[0], binary.LittleEndian.Uint64(addr[8:])^t.seed[1])
	x := hi ^ lo
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x & (clientSets - 1))
}
