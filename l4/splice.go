package l4

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/balancel4/balance-l4/internal/rawconnect"
	"golang.org/x/sys/unix"
)

// maxSplice caps one splice from src into a pipe. The pipe's capacity (1 MiB,
// pipe.go) caps it further, so counters, updated after every splice out, move
// during long transfers.
const maxSplice = 4 << 20

// errSpliceStalled: a splice out of a pipe with bytes in it moved nothing,
// which the kernel should never do.
var errSpliceStalled = errors.New("l4: splice from a non-empty pipe moved nothing")

// direction copies one way, src -> dst: small messages with read(2) and
// write(2) through a pooled buffer, bulk data with splice(2) through a pooled
// pipe. Neither is held while src is empty.
//
// Inside src's raw-read callback it reads src into a buffer and writes that
// to dst, and reads again until EAGAIN: three system calls per message. The
// last read cannot be saved on a short read: a FIN that came with the bytes
// would wake nobody (nginx knows it from EPOLLRDHUP, which Go's netpoller
// does not pass on). A read that fills the buffer says bulk data is flowing:
// it switches to splice, src into a pipe and the pipe into dst, until a
// wake-up moves less than a buffer's worth (HAProxy's splice-auto, by another
// measure), with no copy through user space.
//
// Only when dst's buffer is full does it leave the callback, keeping the
// buffer or pipe with its bytes, and wait for dst to take them through dst's
// raw write; src's lock is not held then, so closing both sockets never waits
// on a blocked write.
type direction struct {
	c        *proxyConn
	src, dst socket
	raw      syscall.RawConn       // src's
	dstRaw   syscall.RawConn       // dst's
	pipes    *pipePool             // the runtime's
	hint     int                   // where d looks first in pipes: src's descriptor
	drainFn  func(fd uintptr) bool // d.drain, bound once
	pumpFn   func(fd uintptr) bool // d.pump, bound once
	pumpCtl  func(fd uintptr)      // d.pump for dstRaw.Control, bound once
	runFn    func()                // runs d, named for stack dumps, bound once

	// Used by the direction's goroutine only.
	p      *pipe    // held while spliced bytes are in flight
	buf    *copyBuf // held while read bytes are in flight: buf[off:end]
	off    int      // the first byte of buf dst has not taken
	end    int      // the end of the bytes read into buf
	bulk   bool     // splicing: the last wake-up moved a buffer's worth or more
	woke   int64    // bytes spliced in this wake-up
	fin    bool     // src sent FIN
	srcErr error    // reading or splicing from src failed
	dstErr error    // writing or splicing to dst failed

	parked     bool        // guarded by c.mu: waiting in the parker, with no goroutine
	registered bool        // guarded by c.mu: src is in the parker's epoll instance
	ended      atomic.Bool // run is returning for good (set before it sends FIN on dst)

	writing atomic.Bool   // waiting for dst to take the bytes in the pipe
	bytes   atomic.Int64  // moved so far
	total   *atomic.Int64 // the backend's live counter for this direction; may be nil

	finEnd, resetEnd, errEnd   ending // how the connection ends when src does that
	peerResetEnd, peerErrorEnd ending // ... and when dst does
}

// init prepares d to copy src -> dst. srcIsClient names the side src is, for
// the ending it causes.
func (d *direction) init(c *proxyConn, src, dst socket, total *atomic.Int64, srcIsClient bool) error {
	raw, err := src.SyscallConn()
	if err != nil {
		return err
	}
	dstRaw, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	d.c, d.src, d.dst, d.raw, d.dstRaw, d.total = c, src, dst, raw, dstRaw, total
	d.pipes = c.pipes
	d.drainFn = d.drain
	d.pumpFn = d.pump
	d.pumpCtl = func(fd uintptr) { d.pump(fd) }
	if srcIsClient {
		d.finEnd, d.resetEnd, d.errEnd = endClientFIN, endClientReset, endClientError
		d.peerResetEnd, d.peerErrorEnd = endBackendReset, endBackendError
		d.runFn = c.clientToBackend
	} else {
		d.runFn = c.backendToClient
		d.finEnd, d.resetEnd, d.errEnd = endBackendFIN, endBackendReset, endBackendError
		d.peerResetEnd, d.peerErrorEnd = endClientReset, endClientError
	}
	return nil
}

// splice copies both directions until both are done; the last one to finish
// closes both sockets and ends the connection (c.end). The calling goroutine
// copies client -> backend, one more (a kept one, workers.go) backend ->
// client; either returns early when its direction parks (park.go).
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
	c.workers.run(c.down.runFn)
	c.clientToBackend()
}

// clientToBackend is the upload direction (named for stack dumps).
func (c *proxyConn) clientToBackend() { c.up.run() }

// backendToClient is the download direction (named for stack dumps).
func (c *proxyConn) backendToClient() { c.down.run() }

// start runs d in a goroutine of its own: resuming a parked direction.
func (d *direction) start() {
	d.c.workers.run(d.runFn)
}

// run copies until src sends FIN (then it shuts down writing on dst and lets
// the other direction go on), either side fails (then it resets both), or the
// connection is aborted; then it tells the connection d is done. It returns
// early, d not done, when d parks.
func (d *direction) run() {
	outcome := d.copy()
	for outcome == copyMore {
		outcome = d.copy()
	}
	if outcome == copyParked {
		return
	}
	d.release()
	d.ended.Store(true)
	d.c.directionDone()
}

// copyOutcome says what run does after one copy.
type copyOutcome uint8

const (
	copyMore   copyOutcome = iota // go on copying
	copyDone                      // d is done: FIN sent on dst, or the connection aborted
	copyParked                    // d parked and belongs to the parker now
)

// copy moves what src has, waiting for it without a pipe.
func (d *direction) copy() copyOutcome {
	d.fin, d.srcErr, d.dstErr = false, nil, nil
	if err := d.raw.Read(d.drainFn); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The watch timer found the connection idle and woke us.
			if d.park() {
				return copyParked
			}
			return copyMore
		}
		d.fail(err, false)
		return copyDone
	}
	switch {
	case d.dstErr != nil:
		d.fail(d.dstErr, true)
		return copyDone
	case d.srcErr != nil:
		d.fail(d.srcErr, false)
		return copyDone
	case d.fin:
		d.c.noteFIN(d.finEnd)
		d.ended.Store(true) // before the FIN leaves: see watch
		if d.c.running.Load() == 1 {
			// The other direction is done: both sockets have been read to
			// their end, so closing them (end, next) sends the FIN.
			return copyDone
		}
		if err := d.dst.CloseWrite(); err != nil && !isClosed(err) {
			d.fail(err, true)
		}
		return copyDone
	}
	// dst's buffer is full and the pipe holds the rest: wait for dst to take
	// it, src's lock not held.
	d.writing.Store(true)
	err := d.dstRaw.Write(d.pumpFn)
	d.writing.Store(false)
	if err == nil {
		err = d.dstErr
	}
	if err != nil {
		d.fail(err, true)
		return copyDone
	}
	d.release()
	return copyMore
}

// release gives back the pipe or buffer d holds, if any. A pipe with bytes
// left in it (the connection failed midway) is closed.
func (d *direction) release() {
	if d.p != nil {
		d.pipes.put(d.p, d.hint)
		d.p = nil
	}
	if d.buf != nil {
		copyBufs.Put(d.buf)
		d.buf, d.off, d.end = nil, 0, 0
	}
}

// drain is src's raw-read callback. It moves src's bytes to dst until src is
// empty (then it gives the buffer or pipe back and returns false to wait),
// src sent FIN or failed, dst failed, or dst's buffer is full (the buffer or
// pipe, still holding bytes, stays with d).
func (d *direction) drain(fd uintptr) bool {
	if d.bulk {
		d.woke = 0
		return d.spliceDrain(fd)
	}
	return d.readDrain(fd)
}

// readDrain moves src to dst through a buffer, read by read.
func (d *direction) readDrain(fd uintptr) bool {
	for {
		if d.buf == nil {
			d.buf = copyBufs.Get().(*copyBuf)
		}
		n, err := rawRead(int(fd), d.buf[:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			d.release()
			return false
		case err != nil:
			d.srcErr = os.NewSyscallError("read", err)
			return true
		case n == 0:
			d.fin = true
			return true
		}
		d.off, d.end = 0, n
		if n == len(d.buf) {
			// Bulk data: splice the rest of it, after this buffer, even if
			// dst makes us wait for it first.
			d.bulk, d.woke = true, int64(n)
		}
		if err := d.dstRaw.Control(d.pumpCtl); err != nil {
			d.dstErr = err
			return true
		}
		if d.dstErr != nil {
			return true
		}
		if d.off < d.end {
			if d.bulk {
				d.readAhead(fd)
			}
			return true
		}
		if d.bulk {
			d.release()
			return d.spliceDrain(fd)
		}
		// A short read says src's queue is empty, not that no FIN is
		// pending: one that came with the data makes no new wake-up. Read
		// on: EAGAIN (then wait), 0 (the FIN) or more bytes.
	}
}

// readAhead splices what src has into a pipe while dst keeps d waiting with
// a full buffer's bytes unsent, so that a bulk transfer to a slow reader
// keeps a pipe's worth in flight, as splicing from the start would. An end
// of stream is left for the next read to see (the FIN must follow the
// bytes held); an error ends the direction, as a reset drops what is in
// flight anyway.
func (d *direction) readAhead(fd uintptr) {
	p, err := d.pipes.get(int(fd))
	if err != nil {
		return // the buffer alone is in flight
	}
	for {
		n, err := rawSplice(int(fd), p.w, maxSplice, spliceFlags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN, err == nil && n == 0:
			d.pipes.put(p, int(fd))
			return
		case err != nil:
			d.pipes.put(p, int(fd))
			d.srcErr = os.NewSyscallError("splice", err)
			return
		}
		p.data += int(n)
		d.p, d.hint = p, int(fd)
		return
	}
}

// spliceDrain moves src to dst through a pipe, splice by splice.
func (d *direction) spliceDrain(fd uintptr) bool {
	for {
		if d.p == nil {
			d.hint = int(fd)
			p, err := d.pipes.get(d.hint)
			if err != nil {
				d.srcErr = fmt.Errorf("taking a splice pipe: %w", err)
				return true
			}
			d.p = p
		}
		n, err := rawSplice(int(fd), d.p.w, maxSplice, spliceFlags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			d.release()
			if d.woke < copyBufSize {
				d.bulk = false // a trickle now: read it
			}
			return false
		case err != nil:
			d.srcErr = os.NewSyscallError("splice", err)
			return true
		case n == 0:
			d.fin = true
			return true
		}
		d.p.data += int(n)
		d.woke += n
		if err := d.dstRaw.Control(d.pumpCtl); err != nil {
			d.dstErr = err
			return true
		}
		if d.dstErr != nil || d.p.data > 0 {
			return true
		}
	}
}

// pump moves the bytes d holds into dst. It returns false when dst's buffer
// is full (bytes are left), true when d holds none or writing failed (dstErr).
func (d *direction) pump(fd uintptr) bool {
	for d.off < d.end { // the buffer's bytes are older than the pipe's
		n, err := rawWrite(int(fd), d.buf[d.off:d.end])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			d.dstErr = os.NewSyscallError("write", err)
			return true
		}
		d.off += n
		d.count(int64(n))
	}
	if d.p != nil {
		return d.pumpPipe(fd)
	}
	return true
}

// pumpPipe splices the pipe into dst.
func (d *direction) pumpPipe(fd uintptr) bool {
	for d.p.data > 0 {
		n, err := rawSplice(d.p.r, int(fd), d.p.data, spliceFlags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			d.dstErr = os.NewSyscallError("splice", err)
			return true
		case n == 0:
			d.dstErr = errSpliceStalled
			return true
		}
		d.p.data -= int(n)
		d.count(n)
	}
	return true
}

// count adds n bytes that dst took to d's counters.
func (d *direction) count(n int64) {
	d.bytes.Add(n)
	if d.total != nil {
		d.total.Add(n)
	}
}

// fail ends the connection after an error on src (or on dst when atDst),
// resetting the other side. A closed socket means someone aborted the
// connection already and recorded why.
func (d *direction) fail(err error, atDst bool) {
	if isClosed(err) {
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

// tcpClosed reports whether the kernel has put conn in TCP_CLOSE, which is
// where a reset (sent or received) leaves it.
func tcpClosed(conn socket) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return true
	}
	closed := true
	_ = raw.Control(func(fd uintptr) {
		if state, err := rawconnect.State(int(fd)); err == nil {
			closed = state == rawconnect.StateClose
		}
	})
	return closed
}
