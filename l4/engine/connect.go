package engine

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/balancel4/balance-l4/internal/rawconnect"
	"golang.org/x/sys/unix"
)

// A backend that is not on this host answers a connect only after a round
// trip. Its socket then waits on a loop's epoll instance, not in Go's
// netpoller with a goroutine and a runtime timer: Connect registers it
// there, for output, edge-triggered, and Start, given the wait's handle,
// modifies that registration for the pair instead of adding the socket
// again. The timeout is the loop's to keep; the few waits of a loop are
// scanned when the earliest is due.

// ConnectWaiter hears once, on a loop's goroutine, how a connect ended. It
// must not block; it is compared with ==, so a pointer is best.
type ConnectWaiter interface {
	// Connected says the connect is over. With err nil the handshake is
	// done and the socket is the caller's again, still registered with
	// the loop: hand it to Start with Pair.Via set to c, or close it.
	// Otherwise the engine closed the socket, and err is the connect's
	// error (an *os.SyscallError, as rawconnect.Judge says),
	// os.ErrDeadlineExceeded after the timeout, or ErrCanceled.
	Connected(c Connecting, err error)
}

// Connecting names a connect a loop waits for.
type Connecting struct {
	l *loop
	w ConnectWaiter
}

// ErrCanceled ends a wait that Cancel or Close ended.
var ErrCanceled = fmt.Errorf("engine: connect wait canceled: %w", context.Canceled)

// Connect has a loop wait for the connect in flight on fd, a non-blocking
// socket the engine owns until w hears of the end, for at most timeout (0:
// no limit). Nothing may Connect after Close.
func (e *Engine) Connect(fd int, timeout time.Duration, w ConnectWaiter) Connecting {
	l := e.loops[e.next.Add(1)%uint32(len(e.loops))]
	l.post(command{op: opConnect, fd: int32(fd), dur: int64(timeout), w: w})
	return Connecting{l: l, w: w}
}

// Cancel ends the wait with ErrCanceled, unless it ended already.
func (c Connecting) Cancel() {
	if c.l != nil {
		c.l.post(command{op: opCancelConnect, w: c.w})
	}
}

// waitTag marks a connect wait in epoll data: the tag in the high half, the
// wait's index in the loop's table in the low one. Slot generations skip it.
const waitTag = 0xFFFF_FFFD

// connectWait is one connect a loop waits for; w is nil while free.
type connectWait struct {
	fd  int32
	due int64 // monotonic ns; 0: no timeout
	w   ConnectWaiter
}

// waitConnect registers a connect to wait for, on the loop.
func (l *loop) waitConnect(fd int32, timeout int64, w ConnectWaiter) {
	if l.stopping {
		rawClose(fd)
		w.Connected(Connecting{l: l, w: w}, ErrCanceled)
		return
	}
	var i uint32
	if n := len(l.freeWaits); n > 0 {
		i = l.freeWaits[n-1]
		l.freeWaits = l.freeWaits[:n-1]
	} else {
		i = uint32(len(l.waits))
		l.waits = append(l.waits, connectWait{})
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET} // errors and hang-ups come unasked
	setData(&ev, uint64(waitTag)<<32|uint64(i))
	if e := rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); e != 0 {
		l.freeWaits = append(l.freeWaits, i)
		rawClose(fd)
		w.Connected(Connecting{l: l, w: w}, syscallErr("epoll_ctl", e))
		return
	}
	var due int64
	if timeout > 0 {
		due = l.now + timeout
		if l.waitDue == 0 || due < l.waitDue {
			l.waitDue = due
		}
	}
	l.waits[i] = connectWait{fd: fd, due: due, w: w}
	l.nWaits.Add(1)
}

// connectEvent looks at a waiting socket epoll reported. An event for a wait
// that ended (its socket waits for Start, or its index has a new wait) is
// only a look too many.
func (l *loop) connectEvent(i uint32) {
	if int(i) >= len(l.waits) || l.waits[i].w == nil {
		return
	}
	done, err := rawconnect.Look(int(l.waits[i].fd))
	if done {
		l.endWait(i, err)
	}
}

// endWait frees wait i and tells its waiter; a failed connect's socket is
// closed, which takes it out of the epoll instance too.
func (l *loop) endWait(i uint32, err error) {
	wt := l.waits[i]
	l.waits[i] = connectWait{}
	l.freeWaits = append(l.freeWaits, i)
	l.nWaits.Add(-1)
	if err != nil {
		rawClose(wt.fd)
	}
	wt.w.Connected(Connecting{l: l, w: wt.w}, err)
}

// expireWaits ends the waits that are due and notes the next deadline.
func (l *loop) expireWaits() {
	var next int64
	for i := range l.waits {
		wt := &l.waits[i]
		switch {
		case wt.w == nil || wt.due == 0:
		case wt.due <= l.now:
			l.endWait(uint32(i), os.ErrDeadlineExceeded)
		case next == 0 || wt.due < next:
			next = wt.due
		}
	}
	l.waitDue = next
}

// cancelWait ends w's wait, if it still runs.
func (l *loop) cancelWait(w ConnectWaiter) {
	for i := range l.waits {
		if l.waits[i].w == w {
			l.endWait(uint32(i), ErrCanceled)
			return
		}
	}
}

// cancelWaits ends every wait, for Close.
func (l *loop) cancelWaits() {
	for i := range l.waits {
		if l.waits[i].w != nil {
			l.endWait(uint32(i), ErrCanceled)
		}
	}
}

// sleepLimit caps timeout (ms, -1: none) by the earliest connect deadline.
func (l *loop) sleepLimit(timeout int, now int64) int {
	if l.waitDue == 0 {
		return timeout
	}
	ms := int(max((l.waitDue-now+999_999)/1_000_000, 0))
	if timeout < 0 || ms < timeout {
		return ms
	}
	return timeout
}
