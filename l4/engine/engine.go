package engine

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Reason says why a connection ended. The engine's own reasons come first;
// an Abort passes any other value through to the Result.
type Reason uint8

const (
	None             Reason = iota
	ClientFIN               // the client sent FIN first and both sides finished
	BackendFIN              // the backend did
	ClientReset             // the client reset, or writing to it found a reset
	BackendReset            // the backend did
	ClientError             // another error on the client's socket
	BackendError            // on the backend's
	IdleTimeout             // no byte moved either way for the idle timeout
	FirstAbortReason        // the first value free for Abort's callers
)

// Result is how a connection ended and the bytes moved each way.
type Result struct {
	Reason Reason
	In     int64 // client -> backend, as the backend took them
	Out    int64 // backend -> client, as the client took them
}

// Owner hears of a connection's end, once, on the loop's goroutine: it must
// not block.
type Owner interface {
	Ended(Result)
}

// Pair is a connection to splice: two connected sockets that the engine owns
// from Start on (it closes them), and what goes with them.
type Pair struct {
	Client, Backend int           // non-blocking, close-on-exec, in no epoll instance (but Backend in Via's loop's)
	Header          []byte        // sent to the backend first, not counted (a PROXY header)
	First           []byte        // sent next and counted as client bytes (a ClientHello read to route)
	Idle            time.Duration // 0: no idle timeout
	In, Out         *atomic.Int64 // live totals to add to; may be nil
	Owner           Owner
	Via             Connecting // the wait that saw Backend connect, if one did: its loop takes the pair
}

// Options tune an Engine; zero values choose defaults.
type Options struct {
	Loops int           // event loops: GOMAXPROCS-1, at least 1
	Tick  time.Duration // the timer wheel's granularity: 5ms
}

// Engine is a set of event loops. Start hands it a connected pair; Close
// ends the loops once every connection has ended.
type Engine struct {
	loops []*loop
	next  atomic.Uint32
	stop  sync.Once
}

// New starts the loops.
func New(o Options) (*Engine, error) {
	n := o.Loops
	if n <= 0 {
		// A processor is left to the goroutines that accept and connect:
		// on this project's 2-core benchmark machine one loop cost 12 %
		// less CPU per connection than two, with the 32-connection p99 at
		// 1.3 ms instead of 3.1 ms (BENCHMARKS.md).
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	tick := o.Tick
	if tick <= 0 {
		tick = 5 * time.Millisecond
	}
	e := &Engine{}
	for range n {
		l, err := newLoop(tick)
		if err != nil {
			for _, l := range e.loops {
				l.closeAll() // not started yet
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		go l.run()
	}
	return e, nil
}

// Start hands p to a loop. On an error nothing was registered, the two
// sockets are closed (reset) and p.Owner hears nothing.
func (e *Engine) Start(p Pair) (Conn, error) {
	l := p.Via.l
	if l == nil {
		l = e.loops[e.next.Add(1)%uint32(len(e.loops))]
	}
	c, err := l.start(&p)
	if err != nil {
		rawLingerZero(int32(p.Client))
		rawLingerZero(int32(p.Backend))
		rawClose(int32(p.Client))
		rawClose(int32(p.Backend))
	}
	return c, err
}

// Close stops the loops. Connections still live are reset, and their owners
// hear of it with ShutdownReason. It waits for the loops to return. Every
// Listener must be closed before, and nothing may Start after. A second Close
// waits as the first does.
func (e *Engine) Close() {
	e.stop.Do(func() {
		for _, l := range e.loops {
			l.post(command{op: opStop})
		}
	})
	for _, l := range e.loops {
		<-l.done
	}
}

// ShutdownReason is what owners of connections still live at Close hear.
const ShutdownReason Reason = 255

// Stats is what the loops hold, for tests and the admin side.
type Stats struct {
	Conns       int64 // live connections
	HeldBuffers int64 // buffers holding bytes a slow writer has not taken
	OpenPipes   int64 // splice pipes open, pooled or holding bytes
	HeldPipes   int64 // pipes holding bytes
	Connecting  int64 // connects waited for (Connect)
}

// Stats sums the loops' figures.
func (e *Engine) Stats() Stats {
	var s Stats
	for _, l := range e.loops {
		s.Conns += l.conns.Load()
		s.HeldBuffers += l.heldBufs.Load()
		s.OpenPipes += l.openPipes.Load()
		s.HeldPipes += l.heldPipes.Load()
		s.Connecting += l.nWaits.Load()
	}
	return s
}

// Conn names a started connection: a loop, a slot and the slot's generation,
// so a Conn whose connection ended never touches the slot's next tenant.
type Conn struct {
	l   *loop
	idx uint32
	gen uint32
}

// Abort ends the connection for why, resetting both sides when reset is set
// (else a plain close). It reports whether this call ends it: false when it
// ended already or another end was decided first.
func (c Conn) Abort(why Reason, reset bool) bool {
	if c.l == nil {
		return false
	}
	r := c.l.rec(c.idx)
	if !r.word.CompareAndSwap(wordOf(c.gen, published), wordOf(c.gen, published|claimed)) {
		return false
	}
	c.l.post(command{op: opAbort, idx: c.idx, gen: c.gen, why: why, reset: reset})
	return true
}

func syscallErr(op string, e unix.Errno) error {
	return fmt.Errorf("engine: %s: %w", op, e)
}
