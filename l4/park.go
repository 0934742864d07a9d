package l4

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Idle directions wait without a goroutine.
//
// A goroutine parked in Go's netpoller costs its stack, 4–8 KB, and a proxied
// connection has two directions: most of an idle connection's memory. So when
// a connection's watch timer (idle.go) sees that no byte moved for a whole
// tick, it wakes both directions with a read deadline in the past; a
// direction woken that way registers its source socket in an epoll instance
// of our own (EPOLLIN|EPOLLRDHUP|EPOLLONESHOT) and its goroutine returns. One
// parker goroutine per runtime waits on that epoll instance — itself through
// Go's netpoller, so it holds no thread — and starts a fresh goroutine for a
// direction whose socket became readable (bytes, FIN, reset, error).
//
// The per-message path is untouched: the deadline is set by the timer, never
// by the copy loop. A connection goes on costing its two sockets, plus one
// epoll descriptor per runtime.
//
// Ownership: a parked direction belongs to nobody until either the parker
// (on an event) or an abort (closing the connection) clears its parked flag
// under the connection's mutex; whoever does runs it, so it ends exactly once.
// The registration is removed (EPOLL_CTL_DEL) under that mutex before the
// sockets are closed, and events carry the connection's id, never a pointer:
// an event that arrives after the connection ended finds no id and is dropped.

// parkEvents is how many events one epoll_wait call returns at most.
const parkEvents = 128

// parker owns the runtime's epoll instance while at least one connection that
// ever parked a direction is alive; the last one to end closes it, which ends
// the parker goroutine.
type parker struct {
	log     zerolog.Logger
	failLog logLimit

	mu    sync.Mutex
	ep    *os.File // the epoll instance; nil while no connection uses it
	epfd  int      // ep's descriptor (ep.Fd would make it blocking)
	conns map[uint64]*proxyConn
	next  uint64

	loops atomic.Int32 // parker goroutines running
}

// join registers c with the parker, starting the epoll instance and its
// goroutine if needed. The caller holds c.mu.
func (p *parker) join(c *proxyConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep == nil {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return os.NewSyscallError("epoll_create1", err)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			_ = unix.Close(fd)
			return os.NewSyscallError("setting epoll descriptor non-blocking", err)
		}
		ep := os.NewFile(uintptr(fd), "l4-park-epoll")
		// Only a file in Go's netpoller takes a deadline: the parker waits there.
		if err := ep.SetReadDeadline(time.Time{}); err != nil {
			_ = ep.Close()
			return fmt.Errorf("polling the epoll descriptor: %w", err)
		}
		raw, err := ep.SyscallConn()
		if err != nil {
			_ = ep.Close()
			return fmt.Errorf("opening epoll descriptor: %w", err)
		}
		p.ep, p.epfd = ep, fd
		p.conns = make(map[uint64]*proxyConn)
		p.loops.Add(1)
		go p.loop(ep, raw)
	}
	p.next++
	c.parkID = p.next
	c.parkFD = p.epfd
	p.conns[c.parkID] = c
	return nil
}

// leave unregisters c, which has ended, closing the epoll instance when c was
// its last user.
func (p *parker) leave(c *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c.parkID)
	if len(p.conns) == 0 && p.ep != nil {
		_ = p.ep.Close()
		p.ep, p.conns = nil, nil
	}
}

// loop waits for parked sockets to become readable and resumes their
// directions, until the epoll instance ep is closed.
func (p *parker) loop(ep *os.File, raw syscall.RawConn) {
	defer p.loops.Add(-1)
	var events [parkEvents]unix.EpollEvent
	err := raw.Read(func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), events[:], 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if ok, s := p.failLog.allow(time.Now()); ok {
					p.log.Error().Err(os.NewSyscallError("epoll_wait", err)).Int64("suppressed", s).
						Msg("waiting for idle connections failed")
				}
				return false
			}
			for i := range n {
				p.wake(eventID(&events[i]))
			}
			if n < len(events) {
				return false
			}
		}
	})
	// A raw read of a closed *os.File fails with the poll package's "use of
	// closed file", which no exported error matches: ask whether leave
	// closed ep, as it does when its last connection ends.
	p.mu.Lock()
	closed := p.ep != ep
	p.mu.Unlock()
	if !closed {
		p.log.Error().Err(err).Msg("waiting for idle connections stopped")
	}
}

// wake resumes the direction an event names, unless the connection ended or
// an abort took the direction first.
func (p *parker) wake(id uint64) {
	p.mu.Lock()
	c := p.conns[id>>1]
	p.mu.Unlock()
	if c == nil {
		return
	}
	d := &c.up
	if id&1 == 1 {
		d = &c.down
	}
	c.mu.Lock()
	own := d.parked
	d.parked = false
	c.mu.Unlock()
	if own {
		d.start()
	}
}

// park hands d, whose source is empty, to the parker. It reports false when d
// must go on in its goroutine: parking failed (it waits as before), or the
// connection was closed meanwhile (the next read says so).
func (d *direction) park() bool {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	// Under c.mu, so that no new wake-up from the timer slips in between.
	if c.closed || d.src.SetReadDeadline(time.Time{}) != nil {
		return false
	}
	if c.parkID == 0 {
		if err := c.parker.join(c); err != nil {
			c.parker.logFailure(err)
			return false
		}
	}
	id := c.parkID << 1
	if d == &c.down {
		id |= 1
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setEventID(&ev, id)
	op := unix.EPOLL_CTL_ADD
	if d.registered {
		op = unix.EPOLL_CTL_MOD // still there, disabled by EPOLLONESHOT
	}
	var ctlErr error
	if err := d.raw.Control(func(fd uintptr) {
		ctlErr = unix.EpollCtl(c.parkFD, op, int(fd), &ev)
	}); err != nil {
		return false
	}
	if ctlErr != nil {
		c.parker.logFailure(os.NewSyscallError("epoll_ctl", ctlErr))
		return false
	}
	d.registered = true
	d.parked = true
	return true
}

// unregisterLocked removes d's source from the parker's epoll instance; the
// caller holds c.mu and closes the socket next.
func (d *direction) unregisterLocked() {
	if !d.registered {
		return
	}
	d.registered = false
	_ = d.raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(d.c.parkFD, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func (p *parker) logFailure(err error) {
	if ok, n := p.failLog.allow(time.Now()); ok {
		p.log.Warn().Err(err).Int64("suppressed", n).
			Msg("parking an idle connection failed; it keeps its goroutines")
	}
}

// The event's 64-bit user data, split over Fd and Pad by x/sys/unix.
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
