package soak

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestIdleTimeoutReapsVanishedClient: a client that goes silent without a FIN
// (as one behind a dead NAT or a pulled cable looks to the proxy) is closed
// by timeouts.idle, so active_connections returns to 0, while a client that
// keeps talking on another connection is left alone.
func TestIdleTimeoutReapsVanishedClient(t *testing.T) {
	t.Parallel()
	backend := startServer(t, echo)
	svc, admin := freePort(t), freePort(t)
	startBalance(t, fmt.Sprintf(`
[admin]
listen = %q
[[services]]
name = "idle"
listen = %q
[services.timeouts]
idle = "1s"
[[services.backends]]
name = "b"
address = %q
`, admin, svc, backend.Addr()), admin)
	a := NewAdminClient(admin, "")

	vanished, err := net.DialTimeout("tcp", svc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer vanished.Close()
	if err := lineRoundTrip(vanished, "last words"); err != nil {
		t.Fatal(err)
	}
	talker, err := net.DialTimeout("tcp", svc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()

	// The talker pings every 250 ms; meanwhile the vanished client must be
	// reaped: one connection left.
	reaped := false
	for i := 0; i < 80 && !reaped; i++ { // at most 20 s
		if err := lineRoundTrip(talker, fmt.Sprintf("ping %d", i)); err != nil {
			t.Fatalf("the talking client was cut after %d pings: %v", i, err)
		}
		reaped = getService(t, a, "idle").ActiveConnections == 1
		time.Sleep(250 * time.Millisecond)
	}
	if !reaped {
		t.Fatal("the silent connection was not closed by timeouts.idle")
	}
	// It keeps talking past the idle timeout.
	for i := range 6 {
		if err := lineRoundTrip(talker, fmt.Sprintf("after %d", i)); err != nil {
			t.Fatalf("the talking client was cut: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The silent client's socket was closed by the proxy.
	vanished.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := vanished.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Errorf("read on the reaped connection: %v, want EOF or a reset", err)
	}
	talker.Close()
	waitFor(t, "active_connections 0", func() bool {
		return getService(t, a, "idle").ActiveConnections == 0
	})
	if b := getBackend(t, a, "idle", "b"); b.ActiveConnections != 0 || b.TotalConnections != 2 {
		t.Errorf("backend after both clients: %d active, %d total; want 0 and 2", b.ActiveConnections, b.TotalConnections)
	}
}
