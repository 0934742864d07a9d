package l4

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Splice pipes, held only while bytes are in flight.
//
// splice(2) moves bytes socket to socket through a pipe. Go's io.Copy keeps a
// pipe (two descriptors) per direction for as long as it blocks reading, so an
// idle proxied connection would cost six descriptors. The copy loop takes a
// pipe from the pool when src is readable and gives it back as soon as src is
// empty and dst has taken every byte, so pipes are shared by every connection
// of the runtime. The pool keeps a few empty pipes, about one per processor
// since a pipe is held only while a goroutine is splicing (or waits for a slow
// dst), and closes the rest: idle connections cost their two sockets and
// nothing else.

// pipeSize is the capacity asked for with F_SETPIPE_SZ, as Go's splice does:
// one splice moves up to this many bytes.
const pipeSize = 1 << 20

// spliceFlags: move pages rather than copy them where the kernel can, and
// never block on the pipe (the sockets are non-blocking already).
const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// pipe is one splice pipe. data counts the bytes in it: a pipe goes back to
// the pool only empty.
type pipe struct {
	r, w int
	data int
}

// pipePool keeps up to len(free) empty pipes, without a lock. Each slot has
// a cache line of its own, and a caller starts looking at the slot its hint
// (the source descriptor) names, so processors splicing at the same time
// seldom touch the same line.
type pipePool struct {
	free   []pipeSlot
	open   atomic.Int64 // pipes open, in the pool or held
	closed atomic.Bool  // the runtime stopped: put closes
}

type pipeSlot struct {
	p atomic.Pointer[pipe]
	_ [56]byte // pad to 64 bytes
}

func newPipePool() *pipePool {
	return &pipePool{free: make([]pipeSlot, max(2, min(runtime.GOMAXPROCS(0), 16)))}
}

// get returns an empty pipe, from the pool or new.
func (pp *pipePool) get(hint int) (*pipe, error) {
	n := len(pp.free)
	for i := range n {
		if p := pp.free[(hint+i)%n].p.Swap(nil); p != nil {
			return p, nil
		}
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	// A bigger pipe moves more per splice; a kernel that refuses (the
	// per-user pipe quota) leaves the default 64 KiB, which still works.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	pp.open.Add(1)
	return &pipe{r: fds[0], w: fds[1]}, nil
}

// put gives p back. A pipe still holding bytes (its connection failed
// midway) is closed, and so is one the pool has no room for.
func (pp *pipePool) put(p *pipe, hint int) {
	if p.data == 0 && !pp.closed.Load() {
		n := len(pp.free)
		for i := range n {
			slot := &pp.free[(hint+i)%n].p
			if slot.CompareAndSwap(nil, p) {
				// close may have emptied the pool meanwhile: take p back
				// out if it is still there, and close it.
				if pp.closed.Load() && slot.CompareAndSwap(p, nil) {
					break
				}
				return
			}
		}
	}
	pp.closePipe(p)
}

// close closes the pooled pipes; pipes given back later are closed too.
func (pp *pipePool) close() {
	pp.closed.Store(true)
	for i := range pp.free {
		if p := pp.free[i].p.Swap(nil); p != nil {
			pp.closePipe(p)
		}
	}
}

func (pp *pipePool) closePipe(p *pipe) {
	_ = unix.Close(p.r)
	_ = unix.Close(p.w)
	pp.open.Add(-1)
}

// copyBufSize is the buffer small messages are copied through. A read that
// fills it switches the direction to splice.
const copyBufSize = 16 << 10

type copyBuf [copyBufSize]byte

// copyBufs holds buffers between messages: a direction keeps one only while
// bytes read into it wait for dst.
var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}
