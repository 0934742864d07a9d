package soak

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestBackendResetMidStream: a backend that resets its connection reaches the
// client as a reset (ECONNRESET on read, SPEC §3 "a reset on one side resets
// the other"). Only a reset before the backend sent any byte is a passive
// failure: such resets count in failed_connections and, after
// consecutive_failures of them, make the backend unhealthy; a reset after the
// backend answered is the application's business and counts as neither.
func TestBackendResetMidStream(t *testing.T) {
	t.Parallel()
	// early reads the client's line and resets without a byte sent.
	early := startServer(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			c.Close() // a health check
			return
		}
		resetConn(c)
	})
	// late greets, waits for the client's go-ahead, then resets.
	late := startServer(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			c.Close()
			return
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			c.Close()
			return
		}
		resetConn(c)
	})
	earlySvc, lateSvc, admin := freePort(t), freePort(t), freePort(t)
	startBalance(t, fmt.Sprintf(`
[admin]
listen = %q
[health_check]
interval = "1h" # one check at start; only passive checks may change the state
[health_check.passive_checks]
consecutive_failures = 3
[resilience.circuit_breaker]
enabled = false
%s
%s
`, admin, service("early", earlySvc, early.Addr()), service("late", lateSvc, late.Addr())), admin)
	a := NewAdminClient(admin, "")

	const n = 3
	for i := range n {
		c, err := net.DialTimeout("tcp", lateSvc, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
			t.Fatalf("late %d: greeting %q, %v", i, line, err)
		}
		if _, err := io.WriteString(c, "go\n"); err != nil {
			t.Fatalf("late %d: writing: %v", i, err)
		}
		if _, err := r.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("late %d: read after the backend's reset: %v, want ECONNRESET", i, err)
		}
		c.Close()
	}
	for i := range n {
		c, err := net.DialTimeout("tcp", earlySvc, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatalf("early %d: writing: %v", i, err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("early %d: read after the backend's reset: %v, want ECONNRESET", i, err)
		}
		c.Close()
	}

	waitFor(t, "early's resets counted as failures", func() bool {
		return getBackend(t, a, "early", "b").FailedConnections == n
	})
	waitFor(t, "early unhealthy after consecutive_failures resets", func() bool {
		return getBackend(t, a, "early", "b").State == "unhealthy"
	})
	b := getBackend(t, a, "early", "b")
	if len(b.Events) == 0 || b.Events[0].To != "unhealthy" || b.Events[0].Reason == "" {
		t.Errorf("early's newest event %+v, want a change to unhealthy with a reason", b.Events)
	}
	if b.Eligible {
		t.Error("early is unhealthy but eligible")
	}

	lb := getBackend(t, a, "late", "b")
	if lb.FailedConnections != 0 || lb.State != "healthy" || lb.ConsecutiveFailures != 0 {
		t.Errorf("late after %d resets that followed its answers: failed %d, state %s, consecutive failures %d; want 0, healthy, 0",
			n, lb.FailedConnections, lb.State, lb.ConsecutiveFailures)
	}
	if lb.TotalConnections != n {
		t.Errorf("late served %d connections, want %d", lb.TotalConnections, n)
	}
}

// service renders a one-backend service named name whose backend is "b".
func service(name, listen, backend string) string {
	return fmt.Sprintf(`
[[services]]
name = %q
listen = %q
[[services.backends]]
name = "b"
address = %q
`, name, listen, backend)
}
