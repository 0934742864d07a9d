package l4

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/balancel4/balance-l4/balance"
	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/resilience"
)

// service is one listener and its backends. It lives as long as its name stays
// in the configuration.
type service struct {
	r    *Runtime
	name string

	cfg atomic.Pointer[serviceConfig] // settings for new connections
	set atomic.Pointer[backendSet]    // backends and pickers for new connections

	// Guarded by r.mu.
	front      *front                 // the address it listens on, maybe shared by SNI routing
	boundAddr  atomic.Pointer[string] // the listener's actual address
	backends   map[string]*backend    // by backendKey
	removed    []*backend             // removed by a reload, still with connections
	checker    health.Checker
	checkCfg   *config.HealthCheck
	discovered map[string][]config.Backend // by discovery source (config.Discovery.Key)

	active   atomic.Int64
	total    atomic.Int64
	retries  atomic.Int64
	rejected struct {
		maxConns, noBackend, connectFailed, proxyHeader atomic.Int64
		noRoute, denied, clientLimit                    atomic.Int64
	}
	acceptErrors atomic.Int64

	acceptLog  logLimit // accept errors
	dialLog    logLimit // clients closed without a backend
	attemptLog logLimit // failed connect attempts
	clientLog  logLimit // clients admitted past a full per-client table

	mu    sync.Mutex // guards the connection list
	conns connList   // every client connection
}

// serviceConfig is what a new connection reads once, at accept: a reload
// swaps in a new one and connections already running keep theirs.
type serviceConfig struct {
	config.Service
	retry     resilience.RetryPolicy
	dialer    *net.Dialer
	accessLog bool

	clients      *clientTable // per-client limits; nil when the service has none
	clientLimits clientLimits
}

// backendSet is the immutable view pickers work on: swapped whole when the
// membership or a weight changes.
type backendSet struct {
	all     []*backend // configuration order
	primary []*backend
	backups []*backend
	pickP   balance.Picker // nil when there are no primaries
	pickB   balance.Picker // nil when there are no backups
}

func newBackendSet(algorithm string, all []*backend, rnd func() uint64) (*backendSet, error) {
	set := &backendSet{all: all}
	var mp, mb []balance.Member
	for _, b := range all {
		if b.backup.Load() {
			set.backups = append(set.backups, b)
			mb = append(mb, b)
		} else {
			set.primary = append(set.primary, b)
			mp = append(mp, b)
		}
	}
	var err error
	if len(mp) > 0 {
		if set.pickP, err = balance.New(algorithm, mp, rnd); err != nil {
			return nil, fmt.Errorf("building picker: %w", err)
		}
	}
	if len(mb) > 0 {
		if set.pickB, err = balance.New(algorithm, mb, rnd); err != nil {
			return nil, fmt.Errorf("building backup picker: %w", err)
		}
	}
	return set, nil
}

// tries is what one client connection has attempted so far. first holds the
// backends tried in the current tier; again, once every eligible one was
// tried, those reused since the last real attempt.
type tries struct {
	first [2]balance.Tried // [primary, backup]
	again [2]balance.Tried
}

// reset empties every set, keeping what they grew.
func (t *tries) reset() {
	for i := range t.first {
		t.first[i].Reset()
		t.again[i].Reset()
	}
}

// choose returns the backend to try next: an untried eligible primary; while
// no primary is eligible, an untried eligible backup; and once every eligible
// backend of that tier was tried, one of them again (reused = true).
func (set *backendSet) choose(key []byte, t *tries) (b *backend, tier, index int, reused bool) {
	tier = 0
	members, picker := set.primary, set.pickP
	if !anyEligible(set.primary) {
		tier, members, picker = 1, set.backups, set.pickB
	}
	if picker == nil {
		return nil, tier, -1, false
	}
	if i := picker.Pick(key, &t.first[tier]); i >= 0 {
		return members[i], tier, i, false
	}
	if i := picker.Pick(key, &t.again[tier]); i >= 0 {
		return members[i], tier, i, true
	}
	return nil, tier, -1, false
}

func anyEligible(bs []*backend) bool {
	for _, b := range bs {
		if b.Eligible() && b.EffectiveWeight() > 0 {
			return true
		}
	}
	return false
}

// track adds a client connection to the service's list; untrack removes it.
func (s *service) track(c *proxyConn) {
	s.mu.Lock()
	s.conns.add(c)
	s.mu.Unlock()
}

func (s *service) untrack(c *proxyConn) {
	s.mu.Lock()
	s.conns.remove(c)
	s.mu.Unlock()
}

// abortAll ends every client connection of the service for why.
func (s *service) abortAll(why ending) int {
	s.mu.Lock()
	list := s.conns.all()
	s.mu.Unlock()
	return abortEach(list, why)
}
