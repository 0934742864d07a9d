package soak

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// startBalance writes config to a file and runs balance-l4 on it until the
// test ends; waitAddr is an address (the admin server or a service) that
// listens once the process is up.
func startBalance(t *testing.T, config, waitAddr string) *Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "balance.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Start(balanceBinary, "-config", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("balance-l4 output:\n%s", tail(p.Output(), 8000))
		}
	})
	waitFor(t, "balance-l4 listening on "+waitAddr, func() bool {
		if !p.Alive() {
			t.Fatalf("balance-l4 exited:\n%s", p.Output())
		}
		c, err := net.DialTimeout("tcp", waitAddr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return p
}

// waitFor polls cond for readiness (a process starting, the API catching
// up), at most 20 s, every 50 ms.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// server is a loopback TCP server with a handler per connection; the test's
// cleanup closes the listener and every connection and waits for handlers.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startServer(t *testing.T, handle func(c *net.TCPConn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, conns: make(map[net.Conn]bool)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c.(*net.TCPConn))
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *server) Addr() string { return s.ln.Addr().String() }

// accepted is how many connections are open now.
func (s *server) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *server) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echo copies everything back and half-closes after the client's FIN.
func echo(c *net.TCPConn) {
	defer c.Close()
	if _, err := io.Copy(c, c); err == nil {
		c.CloseWrite()
	}
}

// lineRoundTrip sends msg and a newline on c and expects them back.
func lineRoundTrip(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return fmt.Errorf("writing %q: %w", msg, err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, int64(len(msg)+1))).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading echo of %q: %w", msg, err)
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo of %q is %q", msg, line)
	}
	return nil
}

// dialRoundTrip opens a new connection to addr, does one round trip, closes.
func dialRoundTrip(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dialing %s: %w", addr, err)
	}
	defer c.Close()
	return lineRoundTrip(c, msg)
}

// getBackend reads one backend's view from the admin API.
func getBackend(t *testing.T, a *AdminClient, service, backend string) apiBackend {
	t.Helper()
	var b apiBackend
	if err := a.GetJSON("/api/v1/services/"+service+"/backends/"+backend, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func getService(t *testing.T, a *AdminClient, service string) apiService {
	t.Helper()
	var s apiService
	if err := a.GetJSON("/api/v1/services/"+service, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func setWeight(t *testing.T, a *AdminClient, service, backend string, w int) {
	t.Helper()
	code, body, err := a.Do(Request{Method: http.MethodPut, Path: "/api/v1/services/" + service + "/backends/" + backend + "/weight",
		Body: fmt.Appendf(nil, `{"weight": %d}`, w)})
	if err != nil || code != http.StatusOK {
		t.Fatalf("setting weight of %s/%s to %d: %d %s %v", service, backend, w, code, body, err)
	}
}

// isTimeoutErr reports whether err is a deadline.
func isTimeoutErr(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
