package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/internal/testservers"
	"github.com/balancel4/balance-l4/status"
)

// testTimeout bounds every wait in these tests; none should come near it.
const testTimeout = 10 * time.Second

// backendServer is a real loopback server a test starts as a backend.
type backendServer struct {
	ln   *net.TCPListener
	addr string
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []*net.TCPConn
}

// startBackend listens on 127.0.0.1:0 and runs handle for every connection
// in its own goroutine. Cleanup closes the listener and every connection and
// waits for the handlers.
func startBackend(t testing.TB, handle func(*net.TCPConn)) *backendServer {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	s := &backendServer{ln: ln, addr: ln.Addr().String()}
	s.wg.Go(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection, then waits for handlers.
func (s *backendServer) stop() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echo copies what it reads back until EOF, then closes its write side.
func echo(c *net.TCPConn) {
	buf := make([]byte, 32<<10)
	_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
	_ = c.CloseWrite()
}

// sayName writes name and waits for the client to close.
func sayName(name string) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		_, _ = c.Write([]byte(name))
		_, _ = io.Copy(io.Discard, c)
	}
}

// hold keeps a connection open until the client closes it.
func hold(c *net.TCPConn) { _, _ = io.Copy(io.Discard, c) }

// closedPort returns a loopback address nobody listens on (connects are
// refused).
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// testService returns a service on 127.0.0.1:0 with test-friendly settings:
// active checks off, passive checks and breaker off, retries on with short
// delays. Tests change what they exercise.
func testService(name string, backends ...config.Backend) config.Service {
	for i := range backends {
		if backends[i].Name == "" {
			backends[i].Name = backends[i].Address
		}
		if backends[i].Weight == 0 {
			backends[i].Weight = 1
		}
	}
	return config.Service{
		Name:      name,
		Listen:    "127.0.0.1:0",
		Algorithm: config.RoundRobin,
		Timeouts:  config.Timeouts{Connect: 2 * time.Second},
		HealthCheck: config.HealthCheck{
			Type:               "tcp",
			Interval:           time.Hour,
			Timeout:            time.Second,
			HealthyThreshold:   1,
			UnhealthyThreshold: 1,
			Passive: config.PassiveChecks{
				ErrorRateThreshold:  0.5,
				MinRequests:         10,
				ConsecutiveFailures: 3,
				Window:              time.Minute,
			},
		},
		Resilience: config.Resilience{
			CircuitBreaker: config.CircuitBreaker{MaxFailures: 3, Timeout: time.Hour, MaxConcurrentRequests: 1},
			Retry: config.Retry{
				Enabled:             true,
				MaxAttempts:         3,
				InitialDelay:        time.Millisecond,
				MaxDelay:            10 * time.Millisecond,
				Multiplier:          2,
				BudgetRatio:         0.2,
				MinRetriesPerSecond: 1000,
			},
		},
		Backends: backends,
	}
}

func be(name, addr string) config.Backend {
	return config.Backend{Name: name, Address: addr, Weight: 1}
}

func testConfig(services ...config.Service) *config.Config {
	return &config.Config{ShutdownTimeout: time.Second, Log: config.Log{AccessLog: true}, Services: services}
}

type syncBuffer = testservers.SyncBuffer

// startRuntime applies cfg to a new runtime whose JSON log goes to the
// returned buffer; cleanup shuts it down. tune, if any, sets the runtime's
// internals (its watch timer) before it starts.
func startRuntime(t testing.TB, cfg *config.Config, tune ...func(*Runtime)) (*Runtime, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	rt := NewRuntime(Options{Log: zerolog.New(logs)})
	for _, f := range tune {
		f(rt)
	}
	if _, err := rt.Apply(cfg); err != nil {
		t.Fatalf("applying configuration: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if _, err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutting down: %v", err)
		}
	})
	return rt, logs
}

// dialService connects to a service of rt.
func dialService(t testing.TB, rt *Runtime, service string) *net.TCPConn {
	t.Helper()
	addr := rt.Addr(service)
	if addr == nil {
		t.Fatalf("service %s has no address", service)
	}
	c, err := net.DialTimeout("tcp", addr.String(), testTimeout)
	if err != nil {
		t.Fatalf("dialing %s: %v", service, err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = tc.Close() })
	return tc
}

// pingedConns opens n connections to a service of rt and pings an echo
// backend through each with msg.
func pingedConns(t testing.TB, rt *Runtime, service string, n int, msg string) []*net.TCPConn {
	t.Helper()
	conns := make([]*net.TCPConn, n)
	for i := range conns {
		conns[i] = dialService(t, rt, service)
		echoOn(t, conns[i], msg)
	}
	return conns
}

// readName reads a backend's name (sayName) through a new connection.
func readName(t testing.TB, rt *Runtime, service string, n int) string {
	t.Helper()
	c := dialService(t, rt, service)
	defer c.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading backend name: %v", err)
	}
	return string(buf)
}

// waitFor polls cond until it holds or the test timeout passes. It is for
// state that settles after an event on another goroutine (a counter after
// a close), never for timing logic.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func backendView(t testing.TB, rt *Runtime, svc, name string) status.Backend {
	t.Helper()
	b, err := rt.Backend(svc, name)
	if err != nil {
		t.Fatalf("backend %s/%s: %v", svc, name, err)
	}
	return b
}

func serviceView(t testing.TB, rt *Runtime, svc string) status.Service {
	t.Helper()
	s, err := rt.Service(svc)
	if err != nil {
		t.Fatalf("service %s: %v", svc, err)
	}
	return s
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}

func zerologDiscard() zerolog.Logger { return zerolog.New(io.Discard) }
