package engine

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxEvents is how many events one epoll_wait returns at most.
const maxEvents = 256

// wakeIdx marks the loop's eventfd in epoll data.
const wakeIdx = ^uint64(0)

type cmdOp uint8

const (
	opAbort cmdOp = iota
	opStop
	opUnlisten
	opResume
	opConnect
	opCancelConnect
)

// command is work posted to a loop from another goroutine.
type command struct {
	op    cmdOp
	idx   uint32
	gen   uint32
	why   Reason
	reset bool
	ack   chan struct{} // opUnlisten: closed when done
	fd    int32         // opConnect: the connecting socket
	dur   int64         // opConnect: its timeout, ns
	w     ConnectWaiter // opConnect, opCancelConnect
}

// loop is one event loop: an epoll instance, its goroutine, and the slots,
// buffers, pipes and timers of the connections it owns.
type loop struct {
	epfd   int
	evfd   int
	events []unix.EpollEvent
	slots

	// Shared with other goroutines, under mu.
	mu       sync.Mutex
	free     []uint32     // freed slots
	lns      []*listenRec // listeners, by index; nil once removed
	top      uint32       // slots ever handed out
	cmds     []command
	sleeping bool // in a blocking epoll_wait; a post must write evfd

	conns     atomic.Int64
	heldBufs  atomic.Int64
	openPipes atomic.Int64
	heldPipes atomic.Int64
	nWaits    atomic.Int64
	done      chan struct{}

	// The loop goroutine's alone.
	now      int64 // monotonic ns, read once per wake-up
	wheel    wheel
	bufs     [][]byte // buffers, slot+1 named in flows; nil when free
	freeBufs []uint32
	shared   uint32 // the buffer every read goes through first
	pipes    []pipe
	freePipe []uint32
	spare    []command
	waiting  []slotRef           // slots with events from before they were published
	peer     unix.RawSockaddrAny // the address of the client accepted last
	stopping bool

	waits     []connectWait // connects in flight (connect.go)
	freeWaits []uint32
	waitDue   int64 // the earliest wait's deadline; 0: none
}

var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

func newLoop(tick time.Duration) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, syscallErr("epoll_create1", err.(unix.Errno))
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, syscallErr("eventfd", err.(unix.Errno))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setData(&ev, wakeIdx)
	if e := rawEpollCtl(epfd, unix.EPOLL_CTL_ADD, int32(evfd), &ev); e != 0 {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, syscallErr("epoll_ctl", e)
	}
	l := &loop{epfd: epfd, evfd: evfd, done: make(chan struct{})}
	l.events = make([]unix.EpollEvent, maxEvents)
	l.now = monotonic()
	l.wheel = newWheel(int64(tick), l.now)
	l.shared = l.takeBuf(bufSize)
	return l, nil
}

// The event's 64-bit data: slot<<1 | side, generation in the high half.
func setData(ev *unix.EpollEvent, v uint64) {
	*(*uint64)(unsafe.Pointer(&ev.Fd)) = v
}

func getData(ev *unix.EpollEvent) uint64 {
	return *(*uint64)(unsafe.Pointer(&ev.Fd))
}

// errFull: the loop's table is full.
var errFull = errors.New("engine: too many connections on one loop")

// start takes a slot, fills it in and registers both sockets, on the
// caller's goroutine: the loop hears of the connection from its first event.
func (l *loop) start(p *Pair) (Conn, error) {
	l.mu.Lock()
	var idx uint32
	if n := len(l.free); n > 0 {
		idx = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		if l.top >= maxChunks*chunkSize {
			l.mu.Unlock()
			return Conn{}, errFull
		}
		idx = l.top
		l.top++
		l.grow(idx)
	}
	l.mu.Unlock()

	r, a := l.rec(idx), l.att(idx)
	gen := uint32(r.word.Load() >> 32)
	r.fd = [2]int32{int32(p.Client), int32(p.Backend)}
	r.idle = int64(p.Idle)
	a.owner, a.in, a.out = p.Owner, p.In, p.Out
	a.header, a.first = p.Header, p.First
	l.conns.Add(1)

	// Both sockets are registered before the slot is published: the loop
	// keeps what it hears before that and replays it after (early), and it
	// cannot end the connection, and close a socket, before both are in.
	const mask = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	ev := unix.EpollEvent{Events: mask}
	setData(&ev, uint64(gen)<<32|uint64(idx)<<1|1)
	op := unix.EPOLL_CTL_ADD
	if p.Via.l == l {
		op = unix.EPOLL_CTL_MOD // registered by the connect's wait
	}
	if e := rawEpollCtl(l.epfd, op, int32(p.Backend), &ev); e != 0 {
		// Nothing is registered: give the slot back as it was.
		*a = attach{}
		l.conns.Add(-1)
		l.mu.Lock()
		l.free = append(l.free, idx)
		l.mu.Unlock()
		return Conn{}, syscallErr("epoll_ctl", e)
	}
	c := Conn{l: l, idx: idx, gen: gen}
	setData(&ev, uint64(gen)<<32|uint64(idx)<<1)
	if e := rawEpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int32(p.Client), &ev); e != 0 {
		// The backend is in: the loop ends the connection, and tells the
		// owner.
		r.word.Store(wordOf(gen, published|claimed))
		l.post(command{op: opAbort, idx: idx, gen: gen, why: ClientError, reset: true})
		return c, nil
	}
	r.word.Store(wordOf(gen, published))
	return c, nil
}

// post queues cmd and wakes the loop if it sleeps.
func (l *loop) post(cmd command) {
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	wake := l.sleeping
	l.sleeping = false
	l.mu.Unlock()
	if wake {
		one := uint64(1)
		_, _ = rawWrite(int32(l.evfd), unsafe.Slice((*byte)(unsafe.Pointer(&one)), 8))
	}
}

// run is the loop: wait, serve events, run commands, fire timers.
func (l *loop) run() {
	defer close(l.done)
	events := l.events
	n := 0
	for {
		var err error
		if n == maxEvents {
			// A full batch: more may be ready, look without waiting.
			var e unix.Errno
			n, e = rawEpollPoll(l.epfd, events)
			if e != 0 {
				n, err = 0, e
			}
		} else {
			n, err = l.sleep(events)
		}
		if err != nil && err != unix.EINTR {
			// Nothing fails on our own instance; should it, do not spin.
			time.Sleep(time.Millisecond)
		}
		l.now = monotonic()
		for i := range n {
			l.event(&events[i])
		}
		if len(l.waiting) > 0 {
			l.replayEarly()
		}
		l.runCommands()
		l.wheel.advance(&l.slots, l.now, l.fire)
		if l.waitDue != 0 && l.now >= l.waitDue {
			l.expireWaits()
		}
		if l.stopping && l.conns.Load() == 0 {
			l.closeAll()
			return
		}
	}
}

// sleep waits for events, for as long as the next timer allows, unless
// commands are waiting: in epoll_wait itself, the one call of a loop that
// goes through the scheduler (it may block).
func (l *loop) sleep(events []unix.EpollEvent) (int, error) {
	l.mu.Lock()
	if len(l.cmds) > 0 || len(l.waiting) > 0 {
		l.mu.Unlock()
		if len(l.waiting) > 0 {
			// A Start is between its registrations and its publication: a
			// few instructions, unless its goroutine was preempted.
			runtime.Gosched()
		}
		n, e := rawEpollPoll(l.epfd, events)
		if e != 0 {
			return 0, e
		}
		return n, nil
	}
	l.sleeping = true
	l.mu.Unlock()
	now := monotonic()
	timeout := l.sleepLimit(l.wheel.wait(now), now)
	if l.stopping {
		timeout = 10 // connections still end: look again soon
	}
	n, err := unix.EpollWait(l.epfd, events, timeout)
	l.mu.Lock()
	l.sleeping = false
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (l *loop) runCommands() {
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = l.spare[:0]
	l.mu.Unlock()
	for _, c := range cmds {
		switch c.op {
		case opAbort:
			r := l.rec(c.idx)
			if r.word.Load()>>32 != uint64(c.gen) {
				continue
			}
			l.close(c.idx, r, c.why, c.reset) // an unseen slot too: close undoes only what was done
		case opStop:
			l.stopping = true
			l.abortAll()
			l.cancelWaits()
		case opUnlisten:
			l.unlisten(int(c.idx), c.ack)
		case opResume:
			l.resume(int(c.idx))
		case opConnect:
			l.waitConnect(c.fd, c.dur, c.w)
		case opCancelConnect:
			l.cancelWait(c.w)
		}
	}
	clear(cmds)
	l.spare = cmds[:0]
}

// abortAll resets every live connection for ShutdownReason.
func (l *loop) abortAll() {
	l.mu.Lock()
	top := l.top
	l.mu.Unlock()
	for idx := range top {
		r := l.rec(idx)
		w := r.word.Load()
		if w&published == 0 {
			continue
		}
		Conn{l: l, idx: idx, gen: uint32(w >> 32)}.Abort(ShutdownReason, true)
	}
}

// closeAll releases the loop's own descriptors.
func (l *loop) closeAll() {
	for i := range l.pipes {
		if p := &l.pipes[i]; p.r >= 0 {
			l.closePipe(p)
		}
	}
	_ = unix.Close(l.evfd)
	_ = unix.Close(l.epfd)
}

// event serves one epoll event.
func (l *loop) event(ev *unix.EpollEvent) {
	data := getData(ev)
	if data == wakeIdx {
		var b [8]byte
		_, _ = rawRead(int32(l.evfd), b[:])
		return
	}
	switch data >> 32 {
	case listenTag:
		l.listenerEvent(int(uint32(data)))
		return
	case waitTag:
		l.connectEvent(uint32(data))
		return
	}
	idx, side, gen := uint32(data)>>1, int(data&1), uint32(data>>32)
	r := l.rec(idx)
	w := r.word.Load()
	if uint32(w>>32) != gen {
		return // the connection ended: a stale event
	}
	if w&published == 0 {
		// Start is registering the other socket: keep the event for later.
		r.early[side] |= ev.Events
		if !r.waiting {
			r.waiting = true
			l.waiting = append(l.waiting, slotRef{idx, gen})
		}
		return
	}
	l.handle(idx, r, side, ev.Events)
}

// replayEarly serves the events of slots that were published since.
func (l *loop) replayEarly() {
	keep := l.waiting[:0]
	for _, ref := range l.waiting {
		r := l.rec(ref.idx)
		w := r.word.Load()
		if uint32(w>>32) != ref.gen {
			continue // ended meanwhile
		}
		if w&published == 0 {
			keep = append(keep, ref)
			continue
		}
		r.waiting = false
		for side := range 2 {
			if ev := r.early[side]; ev != 0 && !r.dead && uint32(r.word.Load()>>32) == ref.gen {
				r.early[side] = 0
				l.handle(ref.idx, r, side, ev)
			}
		}
	}
	clear(l.waiting[len(keep):])
	l.waiting = keep
}

// handle serves events on one side of a published slot.
func (l *loop) handle(idx uint32, r *record, side int, e uint32) {
	if !r.seen {
		l.open(idx, r)
	}
	if r.dead {
		return
	}
	if e&unix.EPOLLERR != 0 {
		if errno := rawSoError(r.fd[side]); errno != 0 {
			l.fail(idx, r, side, errno)
			return
		}
	}
	if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		r.side[side] |= sReadable
		r.dir[side].woke = 0
		if e&unix.EPOLLRDHUP != 0 {
			r.side[side] |= sRDHUP
		}
		if e&unix.EPOLLHUP != 0 {
			r.side[side] |= sHUP
		}
	}
	if e&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		r.side[side] |= sWritable
	}
	l.progress(idx, r)
}

// slotRef names a slot and its generation.
type slotRef struct{ idx, gen uint32 }

// open is the loop's first sight of a slot: it arms the idle timer and
// queues the bytes that go to the backend first.
func (l *loop) open(idx uint32, r *record) {
	r.seen = true
	r.active = l.now
	a := l.att(idx)
	if n := len(a.header) + len(a.first); n > 0 {
		b := l.takeBuf(n)
		buf := l.bufs[b-1]
		copy(buf, a.header)
		copy(buf[len(a.header):], a.first)
		f := &r.dir[0]
		f.buf, f.off, f.end, f.skip = b, 0, uint32(n), uint32(len(a.header))
		l.heldBufs.Add(1)
		a.header, a.first = nil, nil
	}
	if r.idle > 0 {
		l.wheel.add(&l.slots, idx, r, l.now+r.idle)
	}
}

// fire is a timer: the idle check.
func (l *loop) fire(idx uint32, r *record) {
	if r.dead {
		return
	}
	if due := r.active + r.idle; l.now < due {
		l.wheel.add(&l.slots, idx, r, due)
		return
	}
	// No byte moved through the loop for the timeout. Bytes the kernel still
	// moves (a slow reader taking what it holds) count too.
	if sum, inFlight, ok := l.kernelBytes(r); ok && (inFlight || r.dir[0].buf|r.dir[1].buf|r.dir[0].pipe|r.dir[1].pipe != 0) {
		first := !r.kseen
		if first || sum != r.ksum {
			r.kseen, r.ksum = true, sum
			if first {
				l.wheel.add(&l.slots, idx, r, l.now+max(r.idle/4, int64(time.Millisecond)))
			} else {
				r.active = l.now
				l.wheel.add(&l.slots, idx, r, l.now+r.idle)
			}
			return
		}
	}
	l.finish(idx, r, IdleTimeout, false)
}

// kernelBytes sums what the kernel received on and had acknowledged from
// both sockets, and says whether any bytes wait in their send queues.
func (l *loop) kernelBytes(r *record) (sum uint64, inFlight, ok bool) {
	for _, fd := range r.fd {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return 0, false, false
		}
		sum += info.Bytes_received + info.Bytes_acked
		inFlight = inFlight || info.Unacked > 0 || info.Notsent_bytes > 0
	}
	return sum, inFlight, true
}

// finish ends the connection from the loop, unless an Abort decided first
// (its command then ends it).
func (l *loop) finish(idx uint32, r *record, why Reason, reset bool) {
	w := r.word.Load()
	if w&claimed != 0 || !r.word.CompareAndSwap(w, w|claimed) {
		r.dead = true
		return
	}
	l.close(idx, r, why, reset)
}

// fail ends the connection after an error on side's socket.
func (l *loop) fail(idx uint32, r *record, side int, errno unix.Errno) {
	reset := errno == unix.ECONNRESET || errno == unix.EPIPE
	var why Reason
	switch {
	case side == 0 && reset:
		why = ClientReset
	case side == 0:
		why = ClientError
	case reset:
		why = BackendReset
	default:
		why = BackendError
	}
	l.finish(idx, r, why, true)
}

// close closes both sockets, frees the slot and tells the owner. The end is
// claimed already.
func (l *loop) close(idx uint32, r *record, why Reason, reset bool) {
	for d := range r.dir {
		l.release(&r.dir[d])
	}
	for _, fd := range r.fd {
		if reset {
			rawLingerZero(fd)
		}
		rawClose(fd)
	}
	l.wheel.remove(&l.slots, r)
	res := Result{Reason: why, In: r.bytes[0], Out: r.bytes[1]}
	if res.Reason == None {
		res.Reason = r.fin
	}
	a := l.att(idx)
	owner := a.owner
	*a = attach{}
	gen := uint32(r.word.Load() >> 32)
	r.loopState = loopState{}
	gen++
	if gen >= waitTag {
		gen = 0 // the tags of the connect waits, the listeners and the eventfd
	}
	r.word.Store(wordOf(gen, 0))
	l.conns.Add(-1)
	l.mu.Lock()
	l.free = append(l.free, idx)
	l.mu.Unlock()
	if owner != nil {
		owner.Ended(res)
	}
}
