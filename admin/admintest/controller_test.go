package admintest

import (
	"errors"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/status"
)

func newTest(t *testing.T) *Controller {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(func() time.Time { return now })
	err := c.AddService(status.Service{Name: "s", Backends: []status.Backend{{Name: "b", Address: "10.0.0.1:1", Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEligibility(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      func(b *status.Backend)
		drain  bool
		reason string
	}{
		{"fresh", func(*status.Backend) {}, false, ""},
		{"unhealthy", func(b *status.Backend) {
			b.Health = "unhealthy"
			b.LastCheck = &status.Check{Error: "refused"}
		}, false, "health checks failing"},
		{"pending", func(b *status.Backend) { b.Health = "pending" }, false, "waiting for its first health check"},
		{"circuit open", func(b *status.Backend) { b.Circuit = "open" }, false, "circuit breaker open"},
		{"half-open allows a trial", func(b *status.Backend) { b.Circuit = "half_open" }, false, ""},
		{"weight 0", func(b *status.Backend) { b.Weight = 0 }, false, "weight is 0"},
		{"full", func(b *status.Backend) { b.MaxConnections, b.ActiveConnections = 2, 2 }, false, "at max_connections (2)"},
		{"draining wins", func(b *status.Backend) { b.Health = "unhealthy" }, true, "draining"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTest(t)
			if err := c.Update("s", "b", "test", tc.f); err != nil {
				t.Fatal(err)
			}
			if tc.drain {
				if _, err := c.Drain("s", "b", "me"); err != nil {
					t.Fatal(err)
				}
			}
			b, err := c.Backend("s", "b")
			if err != nil {
				t.Fatal(err)
			}
			if b.Reason != tc.reason || b.Eligible != (tc.reason == "") {
				t.Fatalf("reason %q eligible %v, want %q", b.Reason, b.Eligible, tc.reason)
			}
		})
	}
}

func TestDrainIsStickyAndRecorded(t *testing.T) {
	c := newTest(t)
	if _, err := c.Drain("s", "b", "api 1.2.3.4:5"); err != nil {
		t.Fatal(err)
	}
	// Health results are recorded while draining; the state stays draining.
	if err := c.Update("s", "b", "checks", func(b *status.Backend) { b.Health = "unhealthy" }); err != nil {
		t.Fatal(err)
	}
	b, _ := c.Backend("s", "b")
	if b.State != "draining" || b.Health != "unhealthy" || !b.Drained {
		t.Fatalf("state %q health %q drained %v", b.State, b.Health, b.Drained)
	}
	b, _ = c.Undrain("s", "b", "api 1.2.3.4:5")
	if b.State != "unhealthy" {
		t.Fatalf("undrain went to %q, want what the checks say", b.State)
	}
	if len(b.Events) != 2 || b.Events[0].To != "unhealthy" || b.Events[1].Reason != "by api 1.2.3.4:5" {
		t.Fatalf("events = %+v", b.Events)
	}
	// The view is a copy.
	b.Events[0].To = "changed"
	again, _ := c.Backend("s", "b")
	if again.Events[0].To != "unhealthy" {
		t.Fatal("a view shares memory with the fake")
	}
}

func TestEventsKeepTwenty(t *testing.T) {
	c := newTest(t)
	for range 15 {
		c.Drain("s", "b", "x")
		c.Undrain("s", "b", "x")
	}
	b, _ := c.Backend("s", "b")
	if len(b.Events) != maxEvents || b.Events[0].To != "healthy" {
		t.Fatalf("%d events, newest %+v", len(b.Events), b.Events[0])
	}
}

func TestErrors(t *testing.T) {
	c := newTest(t)
	if _, err := c.Backend("s", "nope"); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("unknown backend: %v", err)
	}
	if _, err := c.Service("nope"); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := c.SetWeight("s", "b", 257, "x"); !errors.Is(err, status.ErrInvalid) {
		t.Fatalf("weight 257: %v", err)
	}
	if err := c.AddService(status.Service{Name: "s"}); !errors.Is(err, status.ErrInvalid) {
		t.Fatalf("duplicate service: %v", err)
	}
	if n, err := c.Disconnect("s", "b", "x"); err != nil || n != 0 {
		t.Fatalf("Disconnect = %d, %v", n, err)
	}
}
