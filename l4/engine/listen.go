package engine

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Listeners are served by the loops too: a client is accepted, and handed to
// its Acceptor, on the goroutine of the loop whose epoll instance reported
// it, with no goroutine woken for it. Each loop registers the listening
// socket with EPOLLEXCLUSIVE, level-triggered: one loop is woken per
// client, accepts one and returns to its events, and a backlog left over is
// reported again at once.

// Acceptor takes a listener's clients. Its methods run on a loop and must
// not block.
type Acceptor interface {
	// Accepted hands over a client socket: non-blocking, close-on-exec, in
	// no epoll instance, with the peer's address.
	Accepted(fd int, peer *unix.RawSockaddrAny)
	// AcceptFailed reports an accept that failed for another reason than
	// a client gone already; the listener pauses for the returned time
	// (running out of descriptors, say, lasts a while).
	AcceptFailed(err error) time.Duration
}

// listenTag marks a listener in epoll data: the tag in the high half, the
// listener's index in the loop in the low one. Slot generations skip it.
const listenTag = 0xFFFF_FFFE

// Listener is a listening socket the loops accept on.
type Listener struct {
	e      *Engine
	fd     int32
	a      Acceptor
	mu     sync.Mutex
	closed bool
	idx    []int // its index in each loop's table
}

type listenRec struct {
	ln     *Listener
	paused bool
}

// Listen has the loops accept on fd, a listening socket the engine owns
// from now on (Close closes it).
func (e *Engine) Listen(fd int, a Acceptor) (*Listener, error) {
	ln := &Listener{e: e, fd: int32(fd), a: a, idx: make([]int, len(e.loops))}
	for i, l := range e.loops {
		l.mu.Lock()
		ln.idx[i] = len(l.lns)
		l.lns = append(l.lns, &listenRec{ln: ln})
		l.mu.Unlock()
		if err := l.register(ln.idx[i], ln.fd); err != nil {
			ln.closeOn(i + 1) // the loops after i hold no record of it
			return nil, err
		}
	}
	return ln, nil
}

// register adds the listener to the loop's epoll instance.
func (l *loop) register(i int, fd int32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE}
	setData(&ev, uint64(listenTag)<<32|uint64(i))
	if e := rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); e != 0 {
		return syscallErr("epoll_ctl", e)
	}
	return nil
}

// Close stops accepting: when it returns, no loop calls the Acceptor again
// and the socket is closed.
func (ln *Listener) Close() {
	ln.closeOn(len(ln.e.loops))
}

// closeOn is Close for a listener the first n loops hold.
func (ln *Listener) closeOn(n int) {
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return
	}
	ln.closed = true
	ln.mu.Unlock()
	acks := make([]chan struct{}, n)
	for i, l := range ln.e.loops[:n] {
		acks[i] = make(chan struct{})
		l.post(command{op: opUnlisten, idx: uint32(ln.idx[i]), ack: acks[i]})
	}
	for _, ack := range acks {
		<-ack
	}
	rawClose(ln.fd)
}

// listenerEvent accepts one client on the loop's listener i.
func (l *loop) listenerEvent(i int) {
	l.mu.Lock()
	var rec *listenRec
	if i < len(l.lns) {
		rec = l.lns[i]
	}
	l.mu.Unlock()
	if rec == nil || rec.paused {
		return
	}
	for {
		fd, e := rawAccept4(rec.ln.fd, &l.peer)
		switch e {
		case 0:
			rec.ln.a.Accepted(fd, &l.peer)
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue // a client that reset before we took it
		case unix.EAGAIN:
			return // another loop took it
		}
		// Pause: out of the epoll instance until the delay is over.
		delay := rec.ln.a.AcceptFailed(syscallErr("accept4", e))
		rec.paused = true
		_ = rawEpollCtl(l.epfd, unix.EPOLL_CTL_DEL, rec.ln.fd, nil)
		time.AfterFunc(delay, func() { l.post(command{op: opResume, idx: uint32(i)}) })
		return
	}
}

// unlisten removes the loop's listener i; resume puts a paused one back.
func (l *loop) unlisten(i int, ack chan struct{}) {
	l.mu.Lock()
	rec := l.lns[i]
	l.lns[i] = nil
	l.mu.Unlock()
	if rec != nil && !rec.paused {
		_ = rawEpollCtl(l.epfd, unix.EPOLL_CTL_DEL, rec.ln.fd, nil)
	}
	close(ack)
}

func (l *loop) resume(i int) {
	l.mu.Lock()
	rec := l.lns[i]
	l.mu.Unlock()
	if rec == nil || !rec.paused {
		return
	}
	rec.paused = false
	if err := l.register(i, rec.ln.fd); err != nil {
		rec.paused = true
		delay := rec.ln.a.AcceptFailed(err)
		time.AfterFunc(delay, func() { l.post(command{op: opResume, idx: uint32(i)}) })
	}
}
