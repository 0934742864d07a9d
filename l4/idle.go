package l4

import (
	"time"

	"golang.org/x/sys/unix"
)

// A per-connection timer watches what the copy loops cannot see.
//
// The idle timeout: socket deadlines would not do, since a deadline that fires
// inside Go's splice while bytes sit in its pipe loses them, and a direction
// blocked writing to a slow reader never sees its read deadline. So every
// idle/4 the timer reads the kernel's own byte counters (TCP_INFO
// bytes_received and bytes_acked of both sockets); a connection whose counters
// have not moved for idle is closed, between idle and idle×1.25 after the last
// byte, at no cost per byte.
//
// Parking: a tick that finds no byte moved either way since the last one (by
// the directions' own counters, no system call) and no write blocked wakes
// both directions so that they park without a goroutine (park.go). The first
// tick comes parkFirst after the splice starts and the period doubles while
// bytes move, so a connection that falls idle right after its first exchange
// gives its goroutines back some 30 ms later (the first tick still sees its
// first bytes, the second sees none), while a busy one soon ticks only every
// stallCheck. Most short connections end before the first tick. Parking soon
// matters: stacks freed by parked goroutines stay resident and are reused, so
// memory follows the number of connections not parked yet.
//
// A reset while a direction is stuck writing: when the backend stops reading,
// the upload direction blocks inside splice on the backend's socket, and the
// download direction waits on the backend too, so nobody watches the client.
// A client that resets then would hold the backend connection until the idle
// timeout. While a direction is writing, every stallCheck the timer looks at
// both sockets' TCP state and propagates a reset it finds. Idle connections
// cost a timer tick per stallCheck and no system call.

// unread marks counters not read yet.
const unread = ^uint64(0)

// stallCheck is how often a connection with a blocked write looks for a reset.
const stallCheck = time.Second

// parkFirst is when a connection's timer first looks whether it went idle.
const parkFirst = 10 * time.Millisecond

// startWatch arms the connection's timer.
func (c *proxyConn) startWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	now := time.Now()
	if c.idle > 0 {
		// The first reading of the counters waits for the first idle check:
		// most connections end before it, and it costs two system calls.
		c.idleMoved = unread
		c.idleSeen = now
		c.idleNext = now.Add(idleStep(c.idle))
	}
	c.step = min(c.parkFirst, c.watchStep())
	c.watchTimer = time.AfterFunc(c.step, c.watch)
}

func idleStep(idle time.Duration) time.Duration {
	return max(idle/4, time.Millisecond)
}

func (c *proxyConn) watchStep() time.Duration {
	if c.idle > 0 {
		return min(idleStep(c.idle), c.stall)
	}
	return c.stall
}

// watch runs on the timer: it propagates a reset that a blocked write hides,
// closes the connection if no byte moved either way for the idle timeout, and
// re-arms.
func (c *proxyConn) watch() {
	writing := c.up.writing.Load() || c.down.writing.Load()
	if writing {
		// A socket we sent FIN on reaches TCP_CLOSE cleanly too, once the
		// peer's FIN turns it into a time-wait socket: only one we did not
		// shut down says reset.
		switch {
		case !c.down.ended.Load() && tcpClosed(c.client):
			c.abort(endClientReset, true)
			return
		case !c.up.ended.Load() && tcpClosed(c.backend):
			c.abort(endBackendReset, true)
			return
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	if c.idle > 0 && !now.Before(c.idleNext) {
		moved, ok := kernelBytes(c.client, c.backend)
		switch {
		case ok && c.idleMoved == unread && moved == 0:
			c.idleMoved = 0 // nothing ever moved: idle since the start
		case ok && moved != c.idleMoved:
			// Bytes moved since the last reading (or, at the first one, at
			// some time since the start): count the connection as active now.
			c.idleMoved, c.idleSeen = moved, now
		}
		if ok && now.Sub(c.idleSeen) >= c.idle {
			c.mu.Unlock()
			c.abort(endIdleTimeout, false)
			return
		}
		c.idleNext = now.Add(idleStep(c.idle))
	}
	moved := c.up.bytes.Load() + c.down.bytes.Load()
	if moved == c.lastMoved && !writing {
		c.up.kickLocked()
		c.down.kickLocked()
		c.step = c.watchStep()
	} else {
		c.step = min(2*c.step, c.watchStep())
	}
	c.lastMoved = moved
	c.watchTimer.Reset(c.step)
	c.mu.Unlock()
}

// kickLocked wakes d, if it is waiting in its goroutine, so that it parks:
// no byte moved either way for a whole tick. The caller holds c.mu.
func (d *direction) kickLocked() {
	if d.parked || d.ended.Load() {
		return
	}
	_ = d.src.SetReadDeadline(time.Unix(1, 0))
}

func (c *proxyConn) stopWatchLocked() {
	if c.watchTimer != nil {
		c.watchTimer.Stop()
	}
}

// kernelBytes sums what the kernel received on and had acknowledged from
// both sockets.
func kernelBytes(conns ...socket) (uint64, bool) {
	var sum uint64
	for _, conn := range conns {
		raw, err := conn.SyscallConn()
		if err != nil {
			return 0, false
		}
		var infoErr error
		err = raw.Control(func(fd uintptr) {
			info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				infoErr = err
				return
			}
			sum += info.Bytes_received + info.Bytes_acked
		})
		if err != nil || infoErr != nil {
			return 0, false
		}
	}
	return sum, true
}
