package l4

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ending says how a proxied client connection ended; its String is the
// access log's "end" field.
type ending uint8

const (
	endNone ending = iota
	endClientFIN
	endBackendFIN
	endClientReset
	endBackendReset
	endClientError
	endBackendError
	endIdleTimeout
	endDrainTimeout
	endDisconnected
	endUnhealthy
	endShutdown
)

var endingNames = [...]string{
	endNone:         "unknown",
	endClientFIN:    "client_fin",
	endBackendFIN:   "backend_fin",
	endClientReset:  "client_reset",
	endBackendReset: "backend_reset",
	endClientError:  "client_error",
	endBackendError: "backend_error",
	endIdleTimeout:  "idle_timeout",
	endDrainTimeout: "drain_timeout",
	endDisconnected: "disconnected",
	endUnhealthy:    "backend_unhealthy",
	endShutdown:     "shutdown",
}

func (e ending) String() string {
	if int(e) < len(endingNames) {
		return endingNames[e]
	}
	return "unknown"
}

// proxyConn is one client connection and, once connected, its backend
// connection. Its two directions run in two goroutines while they are busy:
// the one that accepted the client copies client -> backend, a second one
// copies backend -> client. An idle direction parks and holds no goroutine
// (park.go); whichever direction finishes last ends the connection (end).
type proxyConn struct {
	client  *net.TCPConn
	backend socket

	up   direction // client -> backend: bytes_in
	down direction // backend -> client: bytes_out

	idle      time.Duration // 0 = never
	stall     time.Duration // how often the watch timer looks (see idle.go)
	parkFirst time.Duration // when it first looks
	tries     tries         // backends attempted while connecting

	// What end needs once the connection is spliced.
	svc       *service
	be        *backend
	src       *net.TCPAddr // the client, as the PROXY header says if any
	attempts  int
	ticket    clientTicket // the client's hold in the per-client table
	start     time.Time
	accessLog bool
	running   atomic.Int32 // directions not done yet

	parker  *parker
	pipes   *pipePool   // the runtime's splice pipes
	workers *workerPool // the runtime's kept goroutines
	parkID  uint64      // 0 until a direction first parks; then guarded by c.mu
	parkFD  int         // the parker's epoll descriptor, open while parkID is set

	mu         sync.Mutex // guards the fields below; held only for socket calls, never for callbacks
	closed     bool
	why        ending        // the first abort or reset; wins over FINs
	firstFIN   ending        // the first side that sent FIN
	watchTimer *time.Timer   // see idle.go
	idleMoved  uint64        // kernel byte counters at the last idle check
	idleSeen   time.Time     // when they last moved
	idleNext   time.Time     // when to read them again
	lastMoved  int64         // bytes both ways at the last watch tick
	step       time.Duration // the watch timer's current period

	// Links in the service's and the backend's connection lists.
	links [2]connLinks // indexed by listKind
}

// attach records the backend connection. It reports false (and the caller must
// close conn) when the client connection was aborted meanwhile.
func (c *proxyConn) attach(conn socket) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.backend = conn
	return true
}

// abort ends the connection now, for why, resetting both sides when reset is
// set (SO_LINGER 0 then close sends RST). The first reason recorded wins. It
// reports whether this call closed the sockets.
func (c *proxyConn) abort(why ending, reset bool) bool {
	c.mu.Lock()
	if c.why == endNone {
		c.why = why
	}
	if c.closed {
		c.mu.Unlock()
		return false
	}
	upParked, downParked := c.up.parked, c.down.parked
	c.up.parked, c.down.parked = false, false
	c.closeLocked(reset)
	c.mu.Unlock()
	// A parked direction has no goroutine to see the close: give it one,
	// which finds the socket closed and ends the direction.
	if upParked {
		c.up.start()
	}
	if downParked {
		c.down.start()
	}
	return true
}

// closeLocked closes both sockets, first taking them out of the parker's
// epoll instance. The caller holds c.mu.
func (c *proxyConn) closeLocked(reset bool) {
	c.closed = true
	c.stopWatchLocked()
	c.up.unregisterLocked()
	c.down.unregisterLocked()
	for _, s := range [2]socket{c.client, c.backend} {
		if s == nil {
			continue
		}
		if reset {
			_ = s.SetLinger(0)
		}
		_ = s.Close()
	}
}

// directionDone ends the connection when both directions are done.
func (c *proxyConn) directionDone() {
	if c.running.Add(-1) == 0 {
		c.end()
	}
}

// noteFIN records that one side sent FIN.
func (c *proxyConn) noteFIN(side ending) {
	c.mu.Lock()
	if c.firstFIN == endNone {
		c.firstFIN = side
	}
	c.mu.Unlock()
}

// finish closes both sockets after both directions are done and returns how
// the connection ended.
func (c *proxyConn) finish() ending {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closeLocked(false)
	}
	switch {
	case c.why != endNone:
		return c.why
	case c.firstFIN != endNone:
		return c.firstFIN
	}
	return endNone
}
