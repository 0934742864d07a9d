package admin

import (
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/balancel4/balance-l4/status"
)

func svcs(active, bytes int64, backends ...string) []status.Service {
	s := status.Service{Name: "web", ActiveConnections: active}
	for _, b := range backends {
		s.Backends = append(s.Backends, status.Backend{Name: b, ActiveConnections: active, BytesIn: bytes, BytesOut: bytes})
	}
	return []status.Service{s}
}

func TestHistoryRatesAndRing(t *testing.T) {
	h := newHistory(5 * time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.record(t0, svcs(1, 0, "a"))
	h.record(t0.Add(5*time.Second), svcs(2, 500, "a"))   // 1000 B in 5 s
	h.record(t0.Add(10*time.Second), svcs(3, 100, "a"))  // counter went down: restart
	h.record(t0.Add(15*time.Second), svcs(4, 1100, "a")) // 2000 B in 5 s
	var p points
	h.backend("web", "a", &p)
	if want := []float32{1, 2, 3, 4}; !slices.Equal(p.active, want) {
		t.Fatalf("active = %v, want %v", p.active, want)
	}
	if want := []float32{0, 200, 0, 400}; !slices.Equal(p.rate, want) {
		t.Fatalf("rate = %v, want %v", p.rate, want)
	}
	h.service("web", &p)
	if want := []float32{0, 200, 0, 400}; !slices.Equal(p.rate, want) {
		t.Fatalf("service rate = %v, want %v", p.rate, want)
	}
	// The ring keeps the newest historyLen samples, oldest first.
	for i := range historyLen + 10 {
		h.record(t0.Add(time.Duration(20+5*i)*time.Second), svcs(int64(100+i), 1100, "a"))
	}
	h.backend("web", "a", &p)
	if len(p.active) != historyLen || p.active[0] != 110 || p.active[historyLen-1] != float32(100+historyLen+9) {
		t.Fatalf("ring: %d samples from %v to %v", len(p.active), p.active[0], p.active[len(p.active)-1])
	}
}

func TestHistoryDropsVanishedBackends(t *testing.T) {
	h := newHistory(time.Second)
	t0 := time.Now()
	h.record(t0, svcs(1, 0, "a", "b"))
	h.record(t0.Add(time.Second), svcs(1, 0, "a"))
	if _, ok := h.backends[backendKey{"web", "b"}]; ok {
		t.Fatal("removed backend b kept its history")
	}
	h.record(t0.Add(2*time.Second), nil)
	if len(h.backends) != 0 || len(h.services) != 0 {
		t.Fatalf("history of removed services kept: %d backends, %d services", len(h.backends), len(h.services))
	}
	var p points
	h.backend("web", "a", &p)
	if len(p.active) != 0 {
		t.Fatal("points for an unknown backend")
	}
}

func TestSamplerPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHistory(5 * time.Second)
		var calls atomic.Int32
		services := func() []status.Service { calls.Add(1); return svcs(1, 0, "a") }
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { h.run(stop, time.Now, services); close(done) }()
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d samples at start, want 1", n)
		}
		time.Sleep(12 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 3 {
			t.Fatalf("%d samples after 12 s, want 3 (0, 5, 10 s)", n)
		}
		close(stop)
		<-done
	})
}
