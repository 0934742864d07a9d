// Package eventloop is a benchmark peer: a TCP proxy in Go that bypasses Go's
// netpoller, with one epoll event loop per processor on a locked OS thread
// and raw system calls, as HAProxy and nginx are built. It answers one
// question for balance-l4: how much of the gap to HAProxy on connection rate
// and small messages is Go's goroutine-per-direction model, and how much the
// kernel's. It is deliberately bare: round robin, a 16 KiB read/write copy
// with half-close, no health checks, timeouts, limits or accounting, and a
// backend that fails its connect just resets the client.
package eventloop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Proxy forwards every connection accepted on one listener to its backends in turn.
type Proxy struct {
	lfd       int
	addr      string
	backends  []unix.SockaddrInet4
	closeOnce sync.Once
}

// Listen opens a proxy on addr (IPv4) in front of backends (IPv4).
func Listen(addr string, backends []string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, fmt.Errorf("starting event-loop proxy on %s: no backends", addr)
	}
	p := &Proxy{}
	for _, b := range backends {
		ap, err := netip.ParseAddrPort(b)
		if err != nil || !ap.Addr().Is4() {
			return nil, fmt.Errorf("starting event-loop proxy: backend %q is not IPv4 address:port", b)
		}
		p.backends = append(p.backends, unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("starting event-loop proxy: listen address %q is not IPv4 address:port", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("starting event-loop proxy: %w", os.NewSyscallError("socket", err))
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	}
	if err == nil {
		err = unix.Listen(fd, 4096)
	}
	var sa unix.Sockaddr
	if err == nil {
		sa, err = unix.Getsockname(fd)
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("starting event-loop proxy on %s: %w", addr, err)
	}
	in := sa.(*unix.SockaddrInet4)
	p.lfd = fd
	p.addr = netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.addr }

// Close closes the listener; Serve does when it returns.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() { err = unix.Close(p.lfd) })
	return err
}

// Serve runs one event loop per processor until ctx ends, then closes every
// connection and the listener.
func (p *Proxy) Serve(ctx context.Context) error {
	defer p.Close()
	n := runtime.GOMAXPROCS(0)
	loops := make([]*loop, 0, n)
	for range n {
		l, err := newLoop(p)
		if err != nil {
			for _, l := range loops {
				l.closeFDs()
			}
			return err
		}
		loops = append(loops, l)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, l := range loops {
		wg.Go(func() { errs[i] = l.run() })
	}
	<-ctx.Done()
	for _, l := range loops {
		l.stop()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// half is one direction's state, named by its source.
type half struct {
	pending []byte // read from the source, not yet taken by the other side
	rdhup   bool   // epoll said the source's FIN has arrived (nginx's pending_eof)
	fin     bool   // the source's FIN was read
}

type conn struct {
	fds       [2]int // client, backend
	h         [2]half
	connected bool
	closed    bool
}

type loop struct {
	p     *Proxy
	ep    int
	wake  int // eventfd: written to stop the loop
	next  int
	conns map[int]*conn
	buf   [16 << 10]byte
}

func newLoop(p *Proxy) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(ep)
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &loop{p: p, ep: ep, wake: wake, conns: map[int]*conn{}}
	err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, p.lfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(p.lfd)})
	if err == nil {
		err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)})
	}
	if err != nil {
		l.closeFDs()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

func (l *loop) stop() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.wake, one[:])
}

func (l *loop) closeFDs() {
	_ = unix.Close(l.ep)
	_ = unix.Close(l.wake)
}

// run handles events until stop.
func (l *loop) run() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.closeFDs()
	var evs [256]unix.EpollEvent
	for {
		n, err := unix.EpollWait(l.ep, evs[:], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("epoll_wait", err)
		}
		for i := range n {
			fd := int(evs[i].Fd)
			switch fd {
			case l.wake:
				for _, c := range l.conns {
					l.close(c, true)
				}
				return nil
			case l.p.lfd:
				l.accept()
				continue
			}
			if c := l.conns[fd]; c != nil && !c.closed {
				l.event(c, fd, evs[i].Events)
			}
		}
	}
}

func (l *loop) event(c *conn, fd int, ev uint32) {
	side := 0
	if c.fds[1] == fd {
		side = 1
	}
	if side == 1 && !c.connected {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
			l.close(c, true)
			return
		}
		c.connected = true
		l.pump(c, 0) // the client's bytes that waited for the connect
	}
	if ev&unix.EPOLLOUT != 0 {
		l.flush(c, 1-side) // fd can take what the other side left pending
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		c.h[side].rdhup = true
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.pump(c, side)
	}
}

func (l *loop) accept() {
	for {
		var sa unix.RawSockaddrAny
		sl := uint32(unsafe.Sizeof(sa))
		nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(l.p.lfd), uintptr(unsafe.Pointer(&sa)),
			uintptr(unsafe.Pointer(&sl)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if e != 0 {
			return // EAGAIN, or a shortage: the next event retries
		}
		cfd := int(nfd)
		_ = unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		be := l.p.backends[l.next%len(l.p.backends)]
		l.next++
		bfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			_ = unix.Close(cfd)
			continue
		}
		_ = unix.SetsockoptInt(bfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if err := unix.Connect(bfd, &be); err != nil && err != unix.EINPROGRESS {
			_ = unix.Close(cfd)
			_ = unix.Close(bfd)
			continue
		}
		c := &conn{fds: [2]int{cfd, bfd}}
		l.conns[cfd], l.conns[bfd] = c, c
		events := uint32(unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET)
		for _, fd := range c.fds {
			if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
				l.close(c, true)
				break
			}
		}
	}
}

func rawRead(fd int, p []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func rawWrite(fd int, p []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// pump copies from side to the other until side is empty (a short read says
// so, unless a FIN is known to wait behind the bytes) or the other side is
// full (the rest waits in pending).
func (l *loop) pump(c *conn, side int) {
	h := &c.h[side]
	if !c.connected || c.closed || h.fin || len(h.pending) > 0 {
		return
	}
	src, dst := c.fds[side], c.fds[1-side]
	for {
		n, e := rawRead(src, l.buf[:])
		switch {
		case e == unix.EAGAIN:
			return
		case e == unix.EINTR:
			continue
		case e != 0:
			l.close(c, true)
			return
		case n == 0:
			h.fin = true
			l.finish(c, side)
			return
		}
		w, we := rawWrite(dst, l.buf[:n])
		switch {
		case we == unix.EAGAIN:
			w = 0
		case we != 0:
			l.close(c, true)
			return
		}
		if w < n {
			h.pending = append([]byte(nil), l.buf[w:n]...)
			return
		}
		if n < len(l.buf) && !h.rdhup {
			return
		}
	}
}

// flush writes what srcSide left pending to the other side.
func (l *loop) flush(c *conn, srcSide int) {
	h := &c.h[srcSide]
	if len(h.pending) == 0 || c.closed {
		return
	}
	w, e := rawWrite(c.fds[1-srcSide], h.pending)
	switch {
	case e == unix.EAGAIN:
		return
	case e != 0:
		l.close(c, true)
		return
	}
	h.pending = h.pending[w:]
	if len(h.pending) == 0 {
		h.pending = nil
		l.pump(c, srcSide)
	}
}

// finish passes side's FIN on, or closes the connection when the other side
// has sent its FIN already.
func (l *loop) finish(c *conn, side int) {
	if c.h[1-side].fin {
		l.close(c, false)
		return
	}
	_ = unix.Shutdown(c.fds[1-side], unix.SHUT_WR)
}

func (l *loop) close(c *conn, reset bool) {
	if c.closed {
		return
	}
	c.closed = true
	for _, fd := range c.fds {
		if reset {
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
		}
		delete(l.conns, fd)
		_ = unix.Close(fd)
	}
}
