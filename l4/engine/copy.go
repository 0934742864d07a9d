package engine

import (
	"golang.org/x/sys/unix"
)

// bufSize is the shared buffer's size. A read that fills it says bulk data
// is flowing and switches the flow to splice.
const bufSize = 16 << 10

// pipeSize is the capacity asked of each pipe: one splice moves up to this.
const pipeSize = 1 << 20

// spliceFlags: move pages where the kernel can, never block on the pipe.
const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// Pools kept per loop; more are closed or dropped as they come back.
const (
	maxFreeBufs  = 64
	maxFreePipes = 8
)

// pipe is one splice pipe; data counts the bytes in it.
type pipe struct {
	r, w int32
	data int
}

// progress moves what both flows can move now. It returns as soon as the
// connection ends: the slot may then belong to another connection.
func (l *loop) progress(idx uint32, r *record) {
	if l.flow(idx, r, 0) {
		l.flow(idx, r, 1)
	}
}

// flow moves bytes from side d to side 1-d until src is empty (a short read
// says so, unless the peer's FIN is pending), dst is full (the bytes stay
// with the flow, in the buffer or pipe they are in), or the connection ends
// (it returns false).
func (l *loop) flow(idx uint32, r *record, d int) bool {
	f := &r.dir[d]
	src, dst := r.fd[d], r.fd[1-d]
	for {
		if f.buf != 0 || f.pipe != 0 {
			if r.side[1-d]&sWritable == 0 {
				return true
			}
			switch l.flush(idx, r, d) {
			case flushBlocked:
				r.side[1-d] &^= sWritable
				return true
			case flushFailed:
				return false
			}
		}
		if r.side[d]&(sReadable|sEOF) != sReadable {
			return true
		}
		if f.bulk {
			if !l.spliceIn(idx, r, d) {
				return false
			}
			if r.side[d]&sReadable == 0 {
				return true
			}
			continue // with no pipe to be had, bulk is off and the buffer reads
		}
		buf := l.bufs[l.shared-1]
		n, e := rawRead(src, buf)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			r.side[d] &^= sReadable
			return true
		case e != 0:
			l.fail(idx, r, d, e)
			return false
		case n == 0:
			return l.eof(idx, r, d)
		}
		r.active = l.now
		w := 0
		for w < n && r.side[1-d]&sWritable != 0 {
			m, e := rawWrite(dst, buf[w:n])
			switch e {
			case 0:
				w += m
			case unix.EINTR:
			case unix.EAGAIN:
				r.side[1-d] &^= sWritable
			default:
				l.fail(idx, r, 1-d, e)
				return false
			}
		}
		if w > 0 {
			l.count(idx, r, d, w)
		}
		if n == len(buf) {
			f.bulk, f.woke = true, uint32(n)
		}
		if w < n {
			// dst is full: the shared buffer becomes the flow's, with the
			// rest, and the loop takes another.
			f.buf, f.off, f.end = l.shared, uint32(w), uint32(n)
			l.heldBufs.Add(1)
			l.shared = l.takeBuf(bufSize)
			return true
		}
		if n < len(buf) {
			switch {
			case r.side[d]&sRDHUP != 0:
				// A short read emptied src, and the FIN epoll reported came
				// before the read: nothing follows it.
				return l.eof(idx, r, d)
			case r.side[d]&sHUP == 0:
				// A short read emptied src; new bytes make a new edge.
				r.side[d] &^= sReadable
				return true
			}
		}
	}
}

// spliceIn splices what src has into the flow's pipe. It returns false when
// the connection ended.
func (l *loop) spliceIn(idx uint32, r *record, d int) bool {
	f := &r.dir[d]
	if f.pipe == 0 {
		f.pipe = l.getPipe()
		if f.pipe == 0 {
			f.bulk = false // no pipe to be had: read instead
			return true
		}
	}
	p := &l.pipes[f.pipe-1]
	for {
		n, e := rawSplice(r.fd[d], p.w, pipeSize)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			r.side[d] &^= sReadable
			if f.woke < bufSize {
				f.bulk = false // a trickle now: read it
			}
			if p.data == 0 {
				l.putPipe(f)
			}
			return true
		case e != 0:
			l.fail(idx, r, d, e)
			return false
		case n == 0:
			if p.data == 0 {
				l.putPipe(f)
			}
			return l.eof(idx, r, d)
		}
		p.data += n
		f.woke += uint32(n)
		r.active = l.now
		return true
	}
}

type flushResult uint8

const (
	flushed flushResult = iota
	flushBlocked
	flushFailed
)

// flush moves the bytes flow d holds into dst: the buffer's first, they are
// older than the pipe's.
func (l *loop) flush(idx uint32, r *record, d int) flushResult {
	f := &r.dir[d]
	dst := r.fd[1-d]
	if f.buf != 0 {
		buf := l.bufs[f.buf-1]
		for f.off < f.end {
			n, e := rawWrite(dst, buf[f.off:f.end])
			switch e {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return flushBlocked
			default:
				l.fail(idx, r, 1-d, e)
				return flushFailed
			}
			f.off += uint32(n)
			if f.skip > 0 {
				s := min(uint32(n), f.skip)
				f.skip -= s
				n -= int(s)
			}
			if n > 0 {
				l.count(idx, r, d, n)
			}
		}
		l.dropBuf(f)
	}
	if f.pipe != 0 {
		p := &l.pipes[f.pipe-1]
		for p.data > 0 {
			n, e := rawSplice(p.r, dst, p.data)
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN:
				return flushBlocked
			case e != 0:
				l.fail(idx, r, 1-d, e)
				return flushFailed
			case n == 0:
				// The kernel never does this from a pipe with bytes in it.
				l.fail(idx, r, 1-d, unix.EIO)
				return flushFailed
			}
			p.data -= n
			l.count(idx, r, d, n)
		}
		l.putPipe(f)
	}
	return flushed
}

// count adds n bytes that dst took to the flow's counters.
func (l *loop) count(idx uint32, r *record, d int, n int) {
	r.bytes[d] += int64(n)
	r.active = l.now
	a := l.att(idx)
	if t := a.in; d == 0 && t != nil {
		t.Add(int64(n))
	} else if t := a.out; d == 1 && t != nil {
		t.Add(int64(n))
	}
}

// eof: src sent FIN, and the flow holds nothing. The FIN goes on to dst; when
// the other side had sent its FIN already, both are done and the connection
// closes. It returns false when the connection ended.
func (l *loop) eof(idx uint32, r *record, d int) bool {
	r.side[d] |= sEOF
	r.side[d] &^= sReadable
	if r.fin == None {
		r.fin = ClientFIN
		if d == 1 {
			r.fin = BackendFIN
		}
	}
	if r.side[1-d]&sEOF != 0 {
		l.finish(idx, r, None, false)
		return false
	}
	if e := rawShutdownWrite(r.fd[1-d]); e != 0 && e != unix.ENOTCONN {
		l.fail(idx, r, 1-d, e)
		return false
	}
	return true
}

// takeBuf returns a buffer slot (slot+1) of at least size bytes.
func (l *loop) takeBuf(size int) uint32 {
	if size <= bufSize {
		if n := len(l.freeBufs); n > 0 {
			b := l.freeBufs[n-1]
			l.freeBufs = l.freeBufs[:n-1]
			return b
		}
	}
	buf := make([]byte, max(size, bufSize))
	for i, b := range l.bufs {
		if b == nil {
			l.bufs[i] = buf
			return uint32(i + 1)
		}
	}
	l.bufs = append(l.bufs, buf)
	return uint32(len(l.bufs))
}

// dropBuf takes the buffer from f, keeping it for reuse if there is room.
func (l *loop) dropBuf(f *flow) {
	b := f.buf
	f.buf, f.off, f.end, f.skip = 0, 0, 0, 0
	l.heldBufs.Add(-1)
	if len(l.bufs[b-1]) == bufSize && len(l.freeBufs) < maxFreeBufs {
		l.freeBufs = append(l.freeBufs, b)
		return
	}
	l.bufs[b-1] = nil
}

// getPipe returns an empty pipe (slot+1), or 0 when none can be opened.
func (l *loop) getPipe() uint32 {
	l.heldPipes.Add(1)
	if n := len(l.freePipe); n > 0 {
		p := l.freePipe[n-1]
		l.freePipe = l.freePipe[:n-1]
		return p
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		l.heldPipes.Add(-1)
		return 0
	}
	// A kernel that refuses the size (the per-user pipe quota) leaves the
	// default 64 KiB, which still works.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	l.openPipes.Add(1)
	p := pipe{r: int32(fds[0]), w: int32(fds[1])}
	for i := range l.pipes {
		if l.pipes[i].r < 0 {
			l.pipes[i] = p
			return uint32(i + 1)
		}
	}
	l.pipes = append(l.pipes, p)
	return uint32(len(l.pipes))
}

// putPipe takes the pipe from f: an empty one is kept if there is room, a
// pipe with bytes left (its connection failed midway) is closed.
func (l *loop) putPipe(f *flow) {
	i := f.pipe
	f.pipe = 0
	l.heldPipes.Add(-1)
	p := &l.pipes[i-1]
	if p.data == 0 && len(l.freePipe) < maxFreePipes && !l.stopping {
		l.freePipe = append(l.freePipe, i)
		return
	}
	l.closePipe(p)
}

func (l *loop) closePipe(p *pipe) {
	rawClose(p.r)
	rawClose(p.w)
	*p = pipe{r: -1, w: -1}
	l.openPipes.Add(-1)
}

// release gives back what f holds; the connection is closing.
func (l *loop) release(f *flow) {
	if f.buf != 0 {
		l.dropBuf(f)
	}
	if f.pipe != 0 {
		l.putPipe(f)
	}
}
