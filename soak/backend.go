package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Every client connection starts with a header: the magic and the client's
// unique id. The echo backend reads it first, registers where the client
// landed, echoes it and then everything that follows.
const (
	headerLen = 12
	magic     = "SOAK"
)

func appendHeader(b []byte, id uint64) []byte {
	b = append(b, magic...)
	return binary.BigEndian.AppendUint64(b, id)
}

func parseHeader(b []byte) (id uint64, ok bool) {
	if len(b) != headerLen || string(b[:4]) != magic {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[4:]), true
}

// Landing says where a client connection arrived and what the chaos did to it
// there.
type Landing struct {
	Backend int
	At      time.Time
	Fault   FaultKind // FaultKilled or FaultStalled when the backend did it to this very connection
}

// Registry maps client ids to their landings. Backends write it; clients read
// it when a connection fails, to learn whether a fault was injected on it.
type Registry struct {
	mu sync.Mutex
	m  map[uint64]Landing
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: make(map[uint64]Landing)} }

func (r *Registry) land(id uint64, l Landing) {
	r.mu.Lock()
	r.m[id] = l
	r.mu.Unlock()
}

func (r *Registry) markFault(ids []uint64, kind FaultKind) {
	r.mu.Lock()
	for _, id := range ids {
		if l, ok := r.m[id]; ok && l.Fault == "" {
			l.Fault = kind
			r.m[id] = l
		}
	}
	r.mu.Unlock()
}

// Lookup returns where client id landed.
func (r *Registry) Lookup(id uint64) (Landing, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.m[id]
	return l, ok
}

// Forget drops the landing of a finished client, so the map stays small.
func (r *Registry) Forget(id uint64) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// EchoBackend is a TCP echo server the soak can hurt: Kill closes its listener
// and resets every connection, Restart listens again on the same address, and
// Stall makes it accept new connections but never answer them.
type EchoBackend struct {
	Index int
	addr  string
	reg   *Registry
	now   func() time.Time

	mu      sync.Mutex
	ln      net.Listener            // nil while killed
	conns   map[*net.TCPConn]uint64 // id 0 until the header is read
	release chan struct{}           // non-nil while stalled; closed by Unstall
	held    []uint64                // clients held by the current stall
	wg      sync.WaitGroup
}

// StartEchoBackend listens on addr ("127.0.0.1:0" for any port) and serves.
func StartEchoBackend(index int, addr string, reg *Registry) (*EchoBackend, error) {
	b := &EchoBackend{Index: index, reg: reg, now: time.Now, conns: make(map[*net.TCPConn]uint64)}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting echo backend %d: %w", index, err)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	return b, nil
}

// Addr is the backend's address; it stays the same across Kill and Restart.
func (b *EchoBackend) Addr() string { return b.addr }

func (b *EchoBackend) serve(ln net.Listener) {
	b.mu.Lock()
	b.ln = ln
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(5 * time.Millisecond) // EMFILE and the like: back off
				continue
			}
			tc := c.(*net.TCPConn)
			b.mu.Lock()
			if b.ln != ln { // killed between Accept and here
				b.mu.Unlock()
				resetConn(tc)
				continue
			}
			b.conns[tc] = 0
			b.wg.Add(1)
			b.mu.Unlock()
			go b.handle(tc)
		}
	}()
}

func (b *EchoBackend) handle(c *net.TCPConn) {
	defer b.wg.Done()
	defer b.untrack(c)
	hdr := make([]byte, headerLen)
	c.SetReadDeadline(b.now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, hdr); err != nil {
		c.Close() // a health check, or a client that gave up
		return
	}
	c.SetReadDeadline(time.Time{})
	id, ok := parseHeader(hdr)
	if !ok {
		resetConn(c)
		return
	}
	b.mu.Lock()
	if _, tracked := b.conns[c]; !tracked { // reset by Kill meanwhile
		b.mu.Unlock()
		return
	}
	b.conns[c] = id
	l := Landing{Backend: b.Index, At: b.now()}
	release := b.release
	if release != nil {
		l.Fault = FaultStalled
		b.held = append(b.held, id)
	}
	b.reg.land(id, l)
	b.mu.Unlock()
	if release != nil {
		// Stalled: never read, never answer, until Unstall or Kill.
		<-release
		resetConn(c)
		return
	}
	if _, err := c.Write(hdr); err != nil {
		resetConn(c)
		return
	}
	if _, err := io.Copy(c, c); err != nil {
		resetConn(c)
		return
	}
	c.CloseWrite()
	c.Close()
}

func (b *EchoBackend) untrack(c *net.TCPConn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// Kill closes the listener and resets every connection (RST), marking the
// clients on them as killed. New connections are refused until Restart.
func (b *EchoBackend) Kill() (reset int) {
	b.mu.Lock()
	ln := b.ln
	b.ln = nil
	conns := make([]*net.TCPConn, 0, len(b.conns))
	ids := make([]uint64, 0, len(b.conns))
	for c, id := range b.conns {
		conns = append(conns, c)
		if id != 0 {
			ids = append(ids, id)
		}
	}
	clear(b.conns)
	b.mu.Unlock()
	b.reg.markFault(ids, FaultKilled)
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		resetConn(c)
	}
	return len(conns)
}

// Restart listens again on the backend's address. The port was free since
// Kill, so the kernel may have lent it to an outgoing connection meanwhile:
// Restart retries for a while before it gives up.
func (b *EchoBackend) Restart() error {
	var err error
	for range 40 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			b.serve(ln)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("restarting echo backend %d on %s: %w", b.Index, b.addr, err)
}

// Stall makes new connections hang: the backend accepts and reads the
// header (to know who landed there) but never reads or answers again.
func (b *EchoBackend) Stall() {
	b.mu.Lock()
	if b.release == nil {
		b.release = make(chan struct{})
	}
	b.mu.Unlock()
}

// Unstall resets the connections held by the stall and answers again; it
// returns how many were held.
func (b *EchoBackend) Unstall() (held int) {
	b.mu.Lock()
	release := b.release
	b.release = nil
	ids := b.held
	b.held = nil
	b.mu.Unlock()
	if release != nil {
		close(release)
	}
	return len(ids)
}

// Close stops the backend for good and waits for its goroutines.
func (b *EchoBackend) Close() {
	b.Unstall()
	b.Kill()
	b.wg.Wait()
}

// resetConn closes c with an RST instead of a FIN.
func resetConn(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}
