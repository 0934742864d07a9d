package l4

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxSplice caps one splice call. Go's splice moves up to 1 MiB per system
// call through a 1 MiB pipe; a few MiB per call keeps the call count low while
// the byte counters still move during long transfers.
const maxSplice = 4 << 20

// direction copies one way, src -> dst, with splice(2).
type direction struct {
	c        *proxyConn
	src, dst *net.TCPConn
	raw      syscall.RawConn // src's, to wait for readability without reading
	lr       io.LimitedReader
	ready    func(fd uintptr) bool // d.readable, bound once

	queued    int
	waitErr   error
	inq       int32
	peek      [1]byte
	peekFirst bool // the last splice emptied src, as far as we know

	parked     bool        // guarded by c.mu: waiting in the parker, with no goroutine
	registered bool        // guarded by c.mu: src is in the parker's epoll instance
	ended      atomic.Bool // run is returning for good (set before it sends FIN on dst)

	writing atomic.Bool   // inside a splice call, which may block on dst
	bytes   atomic.Int64  // moved so far
	total   *atomic.Int64 // the backend's live counter for this direction; may be nil

	finEnd, resetEnd, errEnd   ending // how the connection ends when src does that
	peerResetEnd, peerErrorEnd ending // ... and when dst does
}

// init prepares d to copy src -> dst. srcSide and dstSide name the two sides
// (client or backend) for the ending they cause.
func (d *direction) init(c *proxyConn, src, dst *net.TCPConn, total *atomic.Int64, srcIsClient bool) error {
	raw, err := src.SyscallConn()
	if err != nil {
		return err
	}
	d.c, d.src, d.dst, d.raw, d.total = c, src, dst, raw, total
	d.lr.R = src
	d.ready = d.readable
	if srcIsClient {
		d.finEnd, d.resetEnd, d.errEnd = endClientFIN, endClientReset, endClientError
		d.peerResetEnd, d.peerErrorEnd = endBackendReset, endBackendError
	} else {
		d.finEnd, d.resetEnd, d.errEnd = endBackendFIN, endBackendReset, endBackendError
		d.peerResetEnd, d.peerErrorEnd = endClientReset, endClientError
	}
	return nil
}

// splice copies both directions until both are done; the last one to finish
// closes both sockets and ends the connection (c.end). The calling goroutine
// copies client -> backend, one more goroutine backend -> client; either
// goroutine returns early when its direction parks (park.go).
func (c *proxyConn) splice(inTotal, outTotal *atomic.Int64) {
	if err := c.up.init(c, c.client, c.backend, inTotal, true); err != nil {
		c.abort(endClientError, true)
		c.end()
		return
	}
	if err := c.down.init(c, c.backend, c.client, outTotal, false); err != nil {
		c.abort(endBackendError, true)
		c.end()
		return
	}
	c.running.Store(2)
	c.startWatch()
	go c.backendToClient()
	c.clientToBackend()
}

// clientToBackend is the upload direction (named for stack dumps).
func (c *proxyConn) clientToBackend() { c.up.run() }

// backendToClient is the download direction (named for stack dumps).
func (c *proxyConn) backendToClient() { c.down.run() }

// start runs d in a goroutine of its own: resuming a parked direction.
func (d *direction) start() {
	if d == &d.c.up {
		go d.c.clientToBackend()
	} else {
		go d.c.backendToClient()
	}
}

// run copies until src sends FIN (then it shuts down writing on dst and lets
// the other direction go on), either side fails (then it resets both), or the
// connection is aborted; then it tells the connection d is done. It returns
// early, d not done, when d parks.
func (d *direction) run() {
	for {
		n, err := d.await()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The watch timer found the connection idle and woke us.
				if d.park() {
					return
				}
				continue
			}
			d.fail(err, false)
			break
		}
		if n == 0 {
			d.c.noteFIN(d.finEnd)
			d.ended.Store(true) // before the FIN leaves: see watch
			if err := d.dst.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
				d.fail(err, true)
			}
			break
		}
		d.lr.N = int64(min(n, maxSplice))
		d.writing.Store(true)
		w, err := d.dst.ReadFrom(&d.lr)
		d.writing.Store(false)
		if w > 0 {
			d.bytes.Add(w)
			if d.total != nil {
				d.total.Add(w)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The idle wake-up raced with bytes arriving; it only
				// stops reads, and before any byte entered the pipe.
				_ = d.src.SetReadDeadline(time.Time{})
				continue
			}
			d.fail(err, errors.Is(err, syscall.EPIPE) || tcpClosed(d.dst) && !tcpClosed(d.src))
			break
		}
		d.peekFirst = true
	}
	d.ended.Store(true)
	d.c.directionDone()
}

// fail ends the connection after an error on src (or on dst when atDst),
// resetting the other side. A closed socket means someone aborted the
// connection already and recorded why.
func (d *direction) fail(err error, atDst bool) {
	if errors.Is(err, net.ErrClosed) {
		return
	}
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	var why ending
	switch {
	case atDst && reset:
		why = d.peerResetEnd
	case atDst:
		why = d.peerErrorEnd
	case reset:
		why = d.resetEnd
	default:
		why = d.errEnd
	}
	d.c.abort(why, true)
}

// await blocks, holding no pipe, until src has bytes queued, has sent FIN
// (0, nil) or has failed.
func (d *direction) await() (int, error) {
	d.queued, d.waitErr = 0, nil
	if err := d.raw.Read(d.ready); err != nil {
		return 0, err
	}
	return d.queued, d.waitErr
}

// readable is the raw-read callback: it returns false to wait for the socket
// to become readable, true once await has its answer.
func (d *direction) readable(fd uintptr) bool {
	for {
		if d.peekFirst {
			// Right after a splice the socket is most likely empty: one
			// peek says so, where asking for the count first costs two calls.
			d.peekFirst = false
			r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&d.peek[0])), 1,
				unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
			switch {
			case errno == unix.EINTR:
				d.peekFirst = true
				continue
			case errno == unix.EAGAIN:
				return false
			case errno != 0:
				d.waitErr = os.NewSyscallError("recvfrom", errno)
				return true
			case r == 0:
				return true
			}
			// Bytes are queued: ask how many.
		}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCINQ, uintptr(unsafe.Pointer(&d.inq)))
		if errno != 0 {
			d.waitErr = os.NewSyscallError("ioctl SIOCINQ", errno)
			return true
		}
		if d.inq > 0 {
			d.queued = int(d.inq)
			return true
		}
		// Nothing queued: FIN, a pending error, or simply no data yet.
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&d.peek[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return false
		case errno != 0:
			d.waitErr = os.NewSyscallError("recvfrom", errno)
			return true
		case r == 0:
			return true
		}
		// A byte arrived between the two calls: ask again how many.
	}
}

// tcpClosed reports whether the kernel has put conn in TCP_CLOSE, which is
// where a reset (sent or received) leaves it.
func tcpClosed(conn *net.TCPConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return true
	}
	closed := true
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			closed = info.State == tcpStateClose
		}
	})
	return closed
}

// tcpStateClose is TCP_CLOSE in include/net/tcp_states.h.
const tcpStateClose = 7
