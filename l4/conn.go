package l4

import (
	"net"
	"sync"
	"time"

	"github.com/balancel4/balance-l4/l4/engine"
)

// ending says how a proxied client connection ended; its String is the
// access log's "end" field. The values up to endIdleTimeout are the copy
// engine's own reasons, the rest are the runtime's, passed through Abort.
type ending uint8

const (
	endNone         = ending(engine.None)
	endClientFIN    = ending(engine.ClientFIN)
	endBackendFIN   = ending(engine.BackendFIN)
	endClientReset  = ending(engine.ClientReset)
	endBackendReset = ending(engine.BackendReset)
	endClientError  = ending(engine.ClientError)
	endBackendError = ending(engine.BackendError)
	endIdleTimeout  = ending(engine.IdleTimeout)
	endDrainTimeout = ending(engine.FirstAbortReason)
	endDisconnected = endDrainTimeout + 1
	endUnhealthy    = endDrainTimeout + 2
	endShutdown     = endDrainTimeout + 3
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
	if e == ending(engine.ShutdownReason) {
		return "shutdown"
	}
	if int(e) < len(endingNames) && endingNames[e] != "" {
		return endingNames[e]
	}
	return "unknown"
}

// proxyConn is one client connection: from accept until a backend is
// connected it belongs to the goroutine serving it; then the copy engine
// moves its bytes and tells it of the end (Ended).
type proxyConn struct {
	cfd    int          // the client's socket, raw; -1 when client holds it
	client *net.TCPConn // a client that was read before it was served (PROXY header, SNI)
	k      connecting   // the connect so far: backends attempted, attempts

	// What the end needs once the connection is spliced.
	svc       *service
	be        *backend
	src       *net.TCPAddr // the client, as the PROXY header says if any
	attempts  int
	ticket    clientTicket // the client's hold in the per-client table
	start     time.Time
	accessLog bool

	mu      sync.Mutex // guards the fields below
	closed  bool       // aborted before it was spliced
	why     ending     // that abort's reason
	waiting bool       // the engine waits for the backend's handshake (k.wait.via names the wait)
	spliced bool       // the engine has it: aborts go to conn
	conn    engine.Conn

	// Links in the service's and the backend's connection lists.
	links [2]connLinks // indexed by listKind
}

// abort ends the connection now, for why, resetting both sides when reset is
// set. It reports whether this call ends it.
func (c *proxyConn) abort(why ending, reset bool) bool {
	c.mu.Lock()
	if c.spliced {
		conn := c.conn
		c.mu.Unlock()
		return conn.Abort(engine.Reason(why), reset)
	}
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed, c.why = true, why
	c.closeClientLocked(reset)
	if c.waiting {
		c.k.wait.via.Cancel()
	}
	return true
}

// closeClientLocked closes the client's socket before it was spliced.
func (c *proxyConn) closeClientLocked(reset bool) {
	if c.client != nil {
		if reset {
			_ = c.client.SetLinger(0)
		}
		_ = c.client.Close()
		return
	}
	if c.cfd >= 0 {
		closeFD(c.cfd, reset)
		c.cfd = -1
	}
}

// closeUnserved closes the client of a connection that was not spliced,
// unless an abort did, and returns the abort's reason.
func (c *proxyConn) closeUnserved() ending {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.closeClientLocked(false)
	}
	return c.why
}

// Connected is the engine's word that the backend's handshake it waited
// for ended; connecting carries on, on the loop that waited.
func (c *proxyConn) Connected(w engine.Connecting, err error) {
	c.mu.Lock()
	c.waiting = false
	c.mu.Unlock()
	hw := c.k.wait
	hw.err = err
	if err != nil {
		w = engine.Connecting{}
	}
	hw.via = w
	c.svc.connectAndSplice(c, hw.cfg, admission{}, nil, true)
}

// Ended is the engine's word that a spliced connection ended: it records the
// outcome, logs and releases the backend. It runs on an engine loop.
func (c *proxyConn) Ended(res engine.Result) {
	c.end(ending(res.Reason), res.In, res.Out)
}
