package l4

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/status"
)

// gatedCheck is a backend whose check answer ("OK", or a close for a
// failing one) waits until release is called, so a test sees the state
// before the first check decides.
type gatedCheck struct {
	*backendServer
	gate chan struct{}
	once sync.Once
}

func startGated(t *testing.T, ok bool) *gatedCheck {
	t.Helper()
	g := &gatedCheck{gate: make(chan struct{})}
	g.backendServer = startBackend(t, func(c *net.TCPConn) {
		<-g.gate
		if ok {
			_, _ = c.Write([]byte("OK"))
			hold(c)
		}
	})
	t.Cleanup(g.release) // before the server's stop, which waits for handlers
	return g
}

func (g *gatedCheck) release() { g.once.Do(func() { close(g.gate) }) }

// pendingService is a service whose check expects "OK", with thresholds
// that one check alone would not cross.
func pendingService(backends ...config.Backend) config.Service {
	sc := testService("s", backends...)
	sc.HealthCheck.Enabled = true
	sc.HealthCheck.Expect = "OK"
	sc.HealthCheck.Timeout = 20 * time.Second
	sc.HealthCheck.HealthyThreshold = 2
	sc.HealthCheck.UnhealthyThreshold = 3
	return sc
}

func eventLine(e status.Event) string { return e.From + " → " + e.To + ": " + e.Reason }

// TestPendingUntilFirstCheck: a backend present at start is healthy at once;
// one added by a reload is pending (state and health, not eligible) until its
// first check decides, pending → healthy or pending → unhealthy, whatever
// the thresholds, and its history says so.
func TestPendingUntilFirstCheck(t *testing.T) {
	a := startBackend(t, func(c *net.TCPConn) { _, _ = c.Write([]byte("OK")); hold(c) })
	good, bad := startGated(t, true), startGated(t, false)
	rt, _ := startRuntime(t, testConfig(pendingService(be("a", a.addr))))

	va := backendView(t, rt, "s", "a")
	if va.State != "healthy" || va.Health != "healthy" || !va.Eligible {
		t.Fatalf("backend present at start: state %s health %s eligible %v, want healthy at once", va.State, va.Health, va.Eligible)
	}

	if _, err := rt.Apply(testConfig(pendingService(be("a", a.addr), be("good", good.addr), be("bad", bad.addr)))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"good", "bad"} {
		v := backendView(t, rt, "s", name)
		if v.State != "pending" || v.Health != "pending" || v.Eligible || v.Reason != "waiting for its first health check" || len(v.Events) != 0 {
			t.Fatalf("%s before its first check: state %s health %s eligible %v reason %q events %+v", name, v.State, v.Health, v.Eligible, v.Reason, v.Events)
		}
	}
	for range 2 {
		if got := readName(t, rt, "s", 2); got != "OK" {
			t.Fatalf("a connection while good and bad are pending read %q", got)
		}
	}
	if n := backendView(t, rt, "s", "a").TotalConnections; n != 2 {
		t.Fatalf("a took %d of the 2 connections made while good and bad were pending", n)
	}

	good.release()
	bad.release()
	waitFor(t, "good's first check", func() bool { return backendView(t, rt, "s", "good").State != "pending" })
	waitFor(t, "bad's first check", func() bool { return backendView(t, rt, "s", "bad").State != "pending" })

	vg := backendView(t, rt, "s", "good")
	if vg.State != "healthy" || vg.Health != "healthy" || !vg.Eligible || len(vg.Events) != 1 || eventLine(vg.Events[0]) != "pending → healthy: first check passed" {
		t.Fatalf("good after one passing check (healthy_threshold 2): state %s health %s eligible %v events %+v", vg.State, vg.Health, vg.Eligible, vg.Events)
	}
	vb := backendView(t, rt, "s", "bad")
	if vb.State != "unhealthy" || vb.Health != "unhealthy" || vb.Eligible || vb.Reason != "health checks failing" ||
		len(vb.Events) != 1 || !strings.HasPrefix(eventLine(vb.Events[0]), "pending → unhealthy: first check failed: ") {
		t.Fatalf("bad after one failing check (unhealthy_threshold 3): state %s health %s eligible %v reason %q events %+v", vb.State, vb.Health, vb.Eligible, vb.Reason, vb.Events)
	}
}

// TestNotPendingWithoutChecks: with active checks off an added backend is
// eligible at once; turning checks off ends a pending state.
func TestNotPendingWithoutChecks(t *testing.T) {
	a := startBackend(t, sayName("a"))
	b := startBackend(t, sayName("b"))
	gated := startGated(t, true)
	rt, _ := startRuntime(t, testConfig(testService("s", be("a", a.addr))))

	if _, err := rt.Apply(testConfig(testService("s", be("a", a.addr), be("b", b.addr)))); err != nil {
		t.Fatal(err)
	}
	if v := backendView(t, rt, "s", "b"); v.State != "healthy" || v.Health != "healthy" || !v.Eligible || len(v.Events) != 0 {
		t.Fatalf("added without checks: state %s health %s eligible %v events %+v", v.State, v.Health, v.Eligible, v.Events)
	}

	// With checks on, c is pending; a reload turning them off decides it.
	withChecks := pendingService(be("a", a.addr), be("b", b.addr), be("c", gated.addr))
	if _, err := rt.Apply(testConfig(withChecks)); err != nil {
		t.Fatal(err)
	}
	if v := backendView(t, rt, "s", "c"); v.State != "pending" {
		t.Fatalf("c added with checks on: %s", v.State)
	}
	withChecks.HealthCheck.Enabled = false
	if _, err := rt.Apply(testConfig(withChecks)); err != nil {
		t.Fatal(err)
	}
	v := backendView(t, rt, "s", "c")
	if v.State != "healthy" || !v.Eligible || len(v.Events) != 1 || eventLine(v.Events[0]) != "pending → healthy: active health checks turned off" {
		t.Fatalf("c after checks were turned off: state %s eligible %v events %+v", v.State, v.Eligible, v.Events)
	}
}
