package l4

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/balancel4/balance-l4/balance"
	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/internal/rawconnect"
	"github.com/balancel4/balance-l4/resilience"
)

// backend is one upstream of a service. It lives as long as its (service,
// name, address) stays in the configuration: a reload that keeps it keeps its
// health state, counters, drain flag and operator weight.
type backend struct {
	svc      *service
	name     string
	address  string
	sockaddr *rawconnect.Sockaddr // address, built once for connect; nil for a host name
	now      func() time.Time

	fileWeight atomic.Int32 // from the configuration
	opWeight   atomic.Int32 // set through the API; -1 = none
	backup     atomic.Bool
	maxConns   atomic.Int64 // 0 = unlimited
	slowStart  atomic.Int64 // the service's slow_start, in ns
	rampStart  atomic.Int64 // unix ns when the current slow start began; 0 = none

	removed atomic.Bool

	active   atomic.Int64
	total    atomic.Int64
	failed   atomic.Int64
	bytesIn  atomic.Int64 // client -> backend
	bytesOut atomic.Int64 // backend -> client

	status  *health.Status
	passive atomic.Pointer[health.Passive]     // nil = passive checks off
	breaker atomic.Pointer[resilience.Breaker] // nil = breaker off

	mu          sync.Mutex // guards the connection list and the timers
	conns       connList   // established connections
	drainTimer  *time.Timer
	reviveTimer *time.Timer
	unsubscribe func()
	settings    *backendSettings // what configure last applied; guarded by r.mu
}

var (
	_ balance.Member = (*backend)(nil)
	_ balance.Named  = (*backend)(nil)
	_ balance.Ramped = (*backend)(nil)
)

// minRamp is the share of its weight a backend gets at the very start of a
// slow start: close to zero, but enough to take a first connection.
const minRamp = 0.01

// Name is the backend's name, unique within its service (balance.Named).
func (b *backend) Name() string { return b.name }

// weight is the operator's weight when set, else the file's.
func (b *backend) weight() int {
	if w := b.opWeight.Load(); w >= 0 {
		return int(w)
	}
	return int(b.fileWeight.Load())
}

// TargetWeight is the weight a slow start ramps to (balance.Ramped).
func (b *backend) TargetWeight() float64 { return float64(b.weight()) }

// EffectiveWeight is the weight now: during slow start it ramps linearly
// from minRamp of the weight to all of it.
func (b *backend) EffectiveWeight() float64 {
	w := float64(b.weight())
	start := b.rampStart.Load()
	if start == 0 {
		return w
	}
	ramp := b.slowStart.Load()
	elapsed := b.now().UnixNano() - start
	if ramp > 0 && elapsed < ramp {
		return w * max(float64(elapsed)/float64(ramp), minRamp)
	}
	b.rampStart.CompareAndSwap(start, 0)
	return w
}

// ActiveConnections counts established connections and connects under way.
func (b *backend) ActiveConnections() int64 { return b.active.Load() }

// Eligible reports whether the backend may take a new connection now. It
// takes no lock: every input is an atomic (the breaker's closed path too).
func (b *backend) Eligible() bool {
	return b.status.State() == health.Healthy &&
		!b.removed.Load() &&
		b.weight() > 0 &&
		b.underLimit() &&
		b.breaker.Load().Ready()
}

func (b *backend) underLimit() bool {
	m := b.maxConns.Load()
	return m <= 0 || b.active.Load() < m
}

// reason says in words why the backend is not eligible, or "" when it is.
func (b *backend) reason() string {
	switch {
	case b.removed.Load():
		return "removed from the configuration"
	case b.status.Draining():
		return "draining"
	case b.status.State() == health.Pending:
		return "waiting for its first health check"
	case !b.status.Healthy():
		return "health checks failing"
	case b.weight() <= 0:
		return "weight is 0"
	case !b.underLimit():
		return fmt.Sprintf("at max_connections (%d)", b.maxConns.Load())
	case !b.breaker.Load().Ready():
		if b.breaker.Load().State() == resilience.Open {
			return "circuit breaker open"
		}
		return "circuit breaker half-open, trial in progress"
	}
	return ""
}

// acquire takes a connection slot, respecting max_connections even when
// many clients race for the last slot. release gives it back.
func (b *backend) acquire() bool {
	limit := b.maxConns.Load()
	if limit <= 0 {
		b.active.Add(1)
		return true
	}
	for {
		n := b.active.Load()
		if n >= limit {
			return false
		}
		if b.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (b *backend) release() { b.active.Add(-1) }

// startRamp begins a slow start, if the service has one.
func (b *backend) startRamp() {
	if b.slowStart.Load() > 0 {
		b.rampStart.Store(max(b.now().UnixNano(), 1))
	}
}

// track adds an established connection to the backend's list; untrack
// removes it. Both are O(1) and allocate nothing.
func (b *backend) track(c *proxyConn) {
	b.mu.Lock()
	b.conns.add(c)
	b.mu.Unlock()
}

func (b *backend) untrack(c *proxyConn) {
	b.mu.Lock()
	b.conns.remove(c)
	b.mu.Unlock()
}

// abortAll ends every established connection for why, resetting both sides,
// and returns how many it closed.
func (b *backend) abortAll(why ending) int {
	b.mu.Lock()
	list := b.conns.all()
	b.mu.Unlock()
	return abortEach(list, why)
}
