package l4

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/health"
)

// hotService returns the running service "s" of a runtime whose n backends
// listen nowhere (nothing here dials them).
func hotService(t testing.TB, n int, alg string) (*Runtime, *service) {
	t.Helper()
	var bs []config.Backend
	for i := range n {
		bs = append(bs, config.Backend{Name: fmt.Sprintf("b%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 1+i), Weight: 1 + i%3})
	}
	sc := testService("s", bs...)
	sc.Algorithm = alg
	sc.Resilience.CircuitBreaker.Enabled = true
	sc.HealthCheck.Passive.Enabled = true
	rt, _ := startRuntime(t, testConfig(sc))
	return rt, rt.service("s")
}

// connBookkeeping is what every proxied connection does to its backend,
// beyond the sockets: take a slot, join the list, leave it, give the slot
// back.
func connBookkeeping(b *backend, c *proxyConn) {
	if !b.acquire() {
		panic("no slot")
	}
	b.track(c)
	b.untrack(c)
	b.release()
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	for _, alg := range []string{config.RoundRobin, config.LeastConnections, config.RandomTwo, config.SourceHash} {
		_, s := hotService(t, 8, alg)
		set := s.set.Load()
		b := set.all[0]
		c := &proxyConn{}
		key := []byte{10, 0, 0, 1}
		tr := &tries{}
		checks := map[string]func(){
			"bookkeeping": func() { connBookkeeping(b, c) },
			"eligible":    func() { _ = b.Eligible() },
			"weight":      func() { _ = b.EffectiveWeight() },
			"choose": func() {
				tr.reset()
				if got, _, _, _ := set.choose(key, tr); got == nil {
					panic("no backend")
				}
			},
		}
		for name, f := range checks {
			if n := testing.AllocsPerRun(200, f); n != 0 {
				t.Errorf("%s/%s allocates %.1f times per call", alg, name, n)
			}
		}
	}
}

func BenchmarkConnBookkeeping(b *testing.B) {
	_, s := hotService(b, 8, config.RoundRobin)
	be := s.set.Load().all[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := &proxyConn{}
		for pb.Next() {
			connBookkeeping(be, c)
		}
	})
}

func BenchmarkEligible(b *testing.B) {
	_, s := hotService(b, 8, config.RoundRobin)
	be := s.set.Load().all[0]
	b.ReportAllocs()
	for b.Loop() {
		if !be.Eligible() {
			b.Fatal("not eligible")
		}
	}
}

func BenchmarkChoose(b *testing.B) {
	for _, alg := range []string{config.RoundRobin, config.LeastConnections, config.RandomTwo, config.SourceHash} {
		for _, n := range []int{3, 100} {
			b.Run(fmt.Sprintf("%s/%d", alg, n), func(b *testing.B) {
				_, s := hotService(b, n, alg)
				set := s.set.Load()
				key := []byte{10, 0, 0, 1}
				tr := &tries{}
				b.ReportAllocs()
				for b.Loop() {
					tr.reset()
					if got, _, _, _ := set.choose(key, tr); got == nil {
						b.Fatal("no backend")
					}
				}
			})
		}
	}
}

// BenchmarkTransfer64MiB streams 64 MiB from a client to a discarding
// backend, directly and through l4, one connection per iteration.
func BenchmarkTransfer64MiB(b *testing.B) {
	const size = 64 << 20
	sink := startBackend(b, func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		_, _ = c.Write([]byte("k"))
	})
	rt, _ := startRuntime(b, testConfig(testService("s", be("sink", sink.addr))))
	plain := startObviousProxy(b, sink.addr)
	targets := map[string]string{"direct": sink.addr, "l4": rt.Addr("s").String(), "plain": plain.addr}
	for _, name := range []string{"direct", "l4", "plain"} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 1<<20)
			b.SetBytes(size)
			for b.Loop() {
				c, err := net.Dial("tcp", targets[name])
				if err != nil {
					b.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				for sent := 0; sent < size; sent += len(buf) {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				_ = c.(*net.TCPConn).CloseWrite()
				if _, err := io.ReadFull(c, buf[:1]); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
		})
	}
}

// fakeClock is a settable clock for slow start.
type fakeClock struct{ now time.Time }

func (f *fakeClock) Now() time.Time { return f.now }

// TestSlowStartRamps: a backend that turns healthy ramps its effective
// weight linearly over slow_start; a weight-1 backend ramps too.
func TestSlowStartRamps(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	sc := testService("s", config.Backend{Name: "a", Address: "127.0.0.1:1", Weight: 4}, config.Backend{Name: "one", Address: "127.0.0.1:2", Weight: 1})
	sc.SlowStart = 10 * time.Second
	rt := NewRuntime(Options{Log: zerologDiscard(), Now: clock.Now})
	if _, err := rt.Apply(testConfig(sc)); err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(t.Context())
	s := rt.service("s")
	for _, b := range s.set.Load().all {
		if w := b.EffectiveWeight(); w != float64(b.weight()) {
			t.Fatalf("%s at start: effective weight %v, want %d (no ramp at process start)", b.name, w, b.weight())
		}
		b.status.MarkUnhealthy("test")
		b.status.MarkHealthy("test")
		want := float64(b.weight())
		for _, step := range []struct {
			at   time.Duration
			want float64
		}{{0, minRamp * want}, {2500 * time.Millisecond, want / 4}, {5 * time.Second, want / 2}, {10 * time.Second, want}, {time.Hour, want}} {
			clock.now = time.Unix(1_000_000, 0).Add(step.at)
			if got := b.EffectiveWeight(); got != step.want {
				t.Fatalf("%s %v into slow start: effective weight %v, want %v", b.name, step.at, got, step.want)
			}
		}
		clock.now = time.Unix(1_000_000, 0)
	}
	if got := backendView(t, rt, "s", "a"); got.State != health.Healthy.String() {
		t.Fatalf("state %s", got.State)
	}
}

// BenchmarkConnectionRate: connect, send one small message, read the echo,
// close; directly, through l4 and through the obvious io.Copy proxy.
func BenchmarkConnectionRate(b *testing.B) {
	srv := startBackend(b, echo)
	sc := testService("s", be("echo", srv.addr))
	cfg := testConfig(sc)
	cfg.Log.AccessLog = false
	rt, _ := startRuntime(b, cfg)
	plain := startObviousProxy(b, srv.addr)
	targets := map[string]string{"direct": srv.addr, "l4": rt.Addr("s").String(), "plain": plain.addr}
	for _, name := range []string{"direct", "l4", "plain"} {
		b.Run(name, func(b *testing.B) {
			msg := []byte("hello")
			buf := make([]byte, len(msg))
			for b.Loop() {
				c, err := net.Dial("tcp", targets[name])
				if err != nil {
					b.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
		})
	}
}

// startObviousProxy starts the obvious Go proxy in front of target, as a
// reference: io.Copy both ways (splice, holding a pipe while blocked) with
// half-close.
func startObviousProxy(b *testing.B, target string) *backendServer {
	return startBackend(b, func(c *net.TCPConn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(c, up)
			_ = c.CloseWrite()
			close(done)
		}()
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
		<-done
	})
}
