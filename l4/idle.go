package l4

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// The idle timeout is watched by a timer, not by socket deadlines: a deadline
// that fires inside Go's splice while bytes sit in its pipe loses them, and a
// direction blocked writing to a slow reader never sees its read deadline. So
// every idle/4 the timer reads the kernel's own byte counters (TCP_INFO
// bytes_received and bytes_acked of both sockets); a connection whose counters
// have not moved for idle is closed. It closes between idle and idle×1.25
// after the last byte, costs nothing per byte, and sees progress inside a
// long splice call too.

// startIdleWatch arms the idle timer when the service has an idle timeout.
func (c *proxyConn) startIdleWatch() {
	if c.idle <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.idleMoved, _ = kernelBytes(c.client, c.backend)
	c.idleSeen = time.Now()
	c.idleTimer = time.AfterFunc(idleStep(c.idle), c.checkIdle)
}

func idleStep(idle time.Duration) time.Duration {
	return max(idle/4, time.Millisecond)
}

// checkIdle runs on the timer: it closes the connection if no byte moved
// either way for the idle timeout, else re-arms.
func (c *proxyConn) checkIdle() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	moved, ok := kernelBytes(c.client, c.backend)
	now := time.Now()
	if ok && moved != c.idleMoved {
		c.idleMoved, c.idleSeen = moved, now
	}
	if !ok || now.Sub(c.idleSeen) < c.idle {
		c.idleTimer.Reset(idleStep(c.idle))
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.abort(endIdleTimeout, false)
}

func (c *proxyConn) stopIdleLocked() {
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
}

// kernelBytes sums what the kernel received on and had acknowledged from
// both sockets.
func kernelBytes(conns ...*net.TCPConn) (uint64, bool) {
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
