// Package backend holds the benchmark's own TCP backends: an echo server for
// connection-rate, ping-pong and idle loads, and a sink that discards a bulk
// stream and answers with the byte count once the client half-closes.
//
// The sink's reply makes throughput exact: the load generator learns how many
// bytes crossed the proxy and when the last one arrived, not how many it managed
// to push into socket buffers. It also exercises half-close through the proxy.
//
// The benchmark runs these in a child process (l4bench -serve-backend) so their CPU
// is not charged to the load generator.
package backend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Handler serves one accepted connection and closes it.
type Handler func(c *net.TCPConn)

// Echo writes back every byte it reads until the client half-closes, then closes.
func Echo(c *net.TCPConn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// SinkReplyLen is the size of the sink's reply: the byte count, big-endian uint64.
const SinkReplyLen = 8

// Sink reads until the client half-closes, then writes the number of bytes it
// read as a big-endian uint64 and closes. A reset leaves nothing to report.
func Sink(c *net.TCPConn) {
	defer c.Close()
	buf := make([]byte, 1<<20)
	var total uint64
	for {
		n, err := c.Read(buf)
		total += uint64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
	}
	var reply [SinkReplyLen]byte
	binary.BigEndian.PutUint64(reply[:], total)
	_, _ = c.Write(reply[:])
}

// Server accepts on one listener and runs a handler per connection.
type Server struct {
	ln      *net.TCPListener
	handler Handler
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*net.TCPConn]struct{}
}

// Listen opens a server on addr ("127.0.0.1:0" for a free port).
func Listen(addr string, h Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return &Server{ln: ln.(*net.TCPListener), handler: h, conns: make(map[*net.TCPConn]struct{})}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts until ctx ends or the listener fails for good, then closes every
// open connection and waits for the handlers. A temporary accept error (EMFILE
// while a 9 000-connection idle load is held) backs off from 5 ms to 1 s instead
// of spinning.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	defer s.closeAll()
	var delay time.Duration
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("accepting on %s: %w", s.Addr(), err)
		}
		delay = 0
		s.track(c, true)
		s.wg.Go(func() {
			defer s.track(c, false)
			s.handler(c)
		})
	}
}

func (s *Server) track(c *net.TCPConn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// isTemporary says whether an accept error will pass by itself: out of file
// descriptors or buffers, or a connection aborted before it was accepted.
func isTemporary(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
