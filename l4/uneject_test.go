package l4

import (
	"net"
	"testing"
	"time"
)

// TestActiveRecoveryClosesTheBreaker: a backend whose breaker opened on real
// refused connects is eligible again as soon as active checks bring it back,
// not only after the breaker's (here: one hour) open timeout.
func TestActiveRecoveryClosesTheBreaker(t *testing.T) {
	good := startBackend(t, sayName("g"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sc := testService("s", be("dead", addr), be("good", good.addr))
	sc.Resilience.CircuitBreaker.Enabled = true
	sc.Resilience.CircuitBreaker.MaxFailures = 2
	sc.Resilience.CircuitBreaker.Timeout = time.Hour
	sc.HealthCheck.Enabled = true
	sc.HealthCheck.Interval = 20 * time.Millisecond
	sc.HealthCheck.HealthyThreshold = 1
	sc.HealthCheck.UnhealthyThreshold = 1000 // passive checks take it out, not these
	sc.HealthCheck.Passive.Enabled = true
	sc.HealthCheck.Passive.ConsecutiveFailures = 2
	rt, _ := startRuntime(t, testConfig(sc))
	for i := 0; i < 50 && backendView(t, rt, "s", "dead").Circuit != "open"; i++ {
		readName(t, rt, "s", 1)
	}
	if c := backendView(t, rt, "s", "dead").Circuit; c != "open" {
		t.Fatalf("circuit %s after refused connects, want open", c)
	}
	waitFor(t, "dead to be unhealthy", func() bool { return backendView(t, rt, "s", "dead").Health == "unhealthy" })
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not listen on %s again: %v", addr, err)
	}
	defer ln2.Close()
	waitFor(t, "checks to bring it back with the breaker closed", func() bool {
		v := backendView(t, rt, "s", "dead")
		return v.State == "healthy" && v.Circuit == "closed" && v.Eligible
	})
}
