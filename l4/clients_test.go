package l4

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
)

const sec = int64(time.Second)

func addr4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

func TestClientTableRate(t *testing.T) {
	tab := newClientTable(1, 2)
	l := clientLimits{interval: sec / 3, burst: 3} // "3/s"
	a, b := addr4(10, 0, 0, 1), addr4(10, 0, 0, 2)
	now := 100 * sec
	for i := range 3 {
		if _, err := tab.admit(a, now, l); err != nil {
			t.Fatalf("burst connection %d: %v", i+1, err)
		}
	}
	if _, err := tab.admit(a, now, l); err != errClientRate {
		t.Fatalf("fourth at once: %v, want errClientRate", err)
	}
	if _, err := tab.admit(b, now, l); err != nil {
		t.Fatalf("another client: %v", err)
	}
	if _, err := tab.admit(a, now+sec/3-1, l); err != errClientRate {
		t.Fatalf("just before a token is back: %v", err)
	}
	if _, err := tab.admit(a, now+sec/3, l); err != nil {
		t.Fatalf("when a token is back: %v", err)
	}
	// A refused attempt costs nothing: after a second the bucket is full.
	if _, err := tab.admit(a, now+sec/3+sec, l); err != nil {
		t.Fatal(err)
	}
	if got := tab.clients(now + 10*sec); got != 0 {
		t.Fatalf("%d clients remembered once every bucket refilled, want 0", got)
	}
	if got := tab.clients(now); got != 2 {
		t.Fatalf("%d clients held, want 2", got)
	}
}

func TestClientTableConnections(t *testing.T) {
	tab := newClientTable(3, 4)
	l := clientLimits{maxConns: 2}
	a := netip.MustParseAddr("2001:db8::1")
	t1, err1 := tab.admit(a, 0, l)
	t2, err2 := tab.admit(a, 0, l)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := tab.admit(a, 0, l); err != errClientConns {
		t.Fatalf("third: %v, want errClientConns", err)
	}
	if _, err := tab.admit(netip.MustParseAddr("2001:db8::2"), 0, l); err != nil {
		t.Fatalf("a neighbour: %v", err)
	}
	t1.release(1)
	if _, err := tab.admit(a, 1, l); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	t2.release(2)
	if got := tab.clients(2); got != 2 {
		t.Fatalf("%d clients, want 2 (each with a connection open)", got)
	}
	// Released to zero with no rate: forgotten at once.
	tk, _ := tab.admit(addr4(1, 1, 1, 1), 3, l)
	tk.release(3)
	set := tab.setOf(addr4(1, 1, 1, 1).As16())
	for _, w := range tab.slots[set*clientWays : (set+1)*clientWays] {
		if w.used && w.addr == addr4(1, 1, 1, 1).As16() {
			t.Fatal("a client with nothing open and a full bucket is still held")
		}
	}
}

// sameSet returns n addresses that hash to one set of tab.
func sameSet(tab *clientTable, n int) []netip.Addr {
	want := tab.setOf(addr4(10, 0, 0, 0).As16())
	out := []netip.Addr{}
	for i := uint32(1); len(out) < n; i++ {
		a := addr4(10, byte(i>>16), byte(i>>8), byte(i))
		if tab.setOf(a.As16()) == want {
			out = append(out, a)
		}
	}
	return out
}

// TestClientTableEviction: a full set forgets the idle client with the
// fullest bucket; clients with connections open are never forgotten, and
// when a set holds only those a newcomer is admitted untracked.
func TestClientTableEviction(t *testing.T) {
	tab := newClientTable(5, 6)
	addrs := sameSet(tab, clientWays+2)
	rate := clientLimits{interval: sec, burst: 10}
	// Eight idle clients that spent tokens: client i spent 8-i of them.
	for i, a := range addrs[:clientWays] {
		for range clientWays - i {
			if _, err := tab.admit(a, 0, rate); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The ninth takes the slot of the one that spent least (the last).
	if _, err := tab.admit(addrs[clientWays], 0, rate); err != nil {
		t.Fatal(err)
	}
	has := func(a netip.Addr) bool {
		set := tab.setOf(a.As16())
		for _, w := range tab.slots[set*clientWays : (set+1)*clientWays] {
			if w.used && w.addr == a.As16() {
				return true
			}
		}
		return false
	}
	if has(addrs[clientWays-1]) || !has(addrs[0]) || !has(addrs[clientWays]) {
		t.Fatal("the fullest idle bucket was not the one forgotten")
	}

	// A set full of clients with connections open.
	tab = newClientTable(7, 8)
	addrs = sameSet(tab, clientWays+1)
	conns := clientLimits{maxConns: 1}
	for _, a := range addrs[:clientWays] {
		if _, err := tab.admit(a, 0, conns); err != nil {
			t.Fatal(err)
		}
	}
	tk, err := tab.admit(addrs[clientWays], 0, conns)
	if err != nil || tk.t != nil {
		t.Fatalf("a newcomer to a full set: ticket %v, %v; want admitted untracked", tk.t != nil, err)
	}
	for _, a := range addrs[:clientWays] {
		if _, err := tab.admit(a, 0, conns); err != errClientConns {
			t.Fatalf("%s lost its count: %v", a, err)
		}
	}
}

// TestClientTableConcurrent exercises the stripes under -race.
func TestClientTableConcurrent(t *testing.T) {
	tab := newClientTable(9, 10)
	l := clientLimits{maxConns: 1 << 20, interval: 1, burst: 1 << 20}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				a := addr4(10, byte(g), byte(i>>8), byte(i%7))
				tk, err := tab.admit(a, int64(i), l)
				if err != nil {
					t.Errorf("%s: %v", a, err)
					return
				}
				tk.release(int64(i))
			}
		})
	}
	wg.Wait()
	if n := tab.clients(1 << 40); n != 0 {
		t.Fatalf("%d clients held after every connection ended", n)
	}
}

// screenService is a running service with allow/deny lists and both
// per-client limits, as the accept path sees it.
func screenService(t testing.TB) (*service, *serviceConfig) {
	sc := testService("s", be("a", "127.0.0.1:1"))
	sc.Deny = prefixes("192.0.2.0/24", "198.51.100.0/24", "2001:db8:dead::/48", "203.0.113.7/32")
	sc.Allow = prefixes("10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32", "127.0.0.0/8")
	sc.MaxConnectionsPerClient = 100
	// One token a nanosecond: the benchmarks never run out (beyond what a
	// file may set, but the same work per check).
	sc.ConnectionRatePerClient = config.Rate{Count: 1_000_000_000, Per: time.Second}
	rt, _ := startRuntime(t, testConfig(sc))
	s := rt.service("s")
	return s, s.cfg.Load()
}

// TestScreenDoesNotAllocate: checking a client at accept (allow/deny, both
// per-client limits, and the release at close) allocates nothing.
func TestScreenDoesNotAllocate(t *testing.T) {
	s, cfg := screenService(t)
	ip := addr4(10, 1, 2, 3)
	ip6 := netip.MustParseAddr("2001:db8::7")
	allocs := testing.AllocsPerRun(1000, func() {
		for _, a := range [2]netip.Addr{ip, ip6} {
			tk, _, err := s.screen(cfg, a)
			if err != nil {
				panic(err)
			}
			tk.release(s.r.now().UnixNano())
		}
		if _, _, err := s.screen(cfg, addr4(192, 0, 2, 1)); err != errDenied {
			panic(fmt.Sprint("deny: ", err))
		}
	})
	if allocs != 0 {
		t.Fatalf("screening a client allocates %v times", allocs)
	}
}

// BenchmarkScreen is the accept path's cost of allow/deny (4 + 4 prefixes)
// and both per-client limits, with the release at close: one client, and
// many clients from many goroutines.
func BenchmarkScreen(b *testing.B) {
	s, cfg := screenService(b)
	b.Run("one-client", func(b *testing.B) {
		ip := addr4(10, 1, 2, 3)
		b.ReportAllocs()
		for b.Loop() {
			tk, _, err := s.screen(cfg, ip)
			if err != nil {
				b.Fatal(err)
			}
			tk.release(s.r.now().UnixNano())
		}
	})
	b.Run("allow-deny-only", func(b *testing.B) {
		c := *cfg
		c.clients = nil
		ip := addr4(10, 1, 2, 3)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.screen(&c, ip); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("many-clients-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var i uint32
			for pb.Next() {
				i++
				tk, _, err := s.screen(cfg, addr4(10, byte(i>>16), byte(i>>8), byte(i)))
				if err != nil {
					b.Fatal(err)
				}
				tk.release(s.r.now().UnixNano())
			}
		})
	})
}

// clients returns how many clients the table holds at now.
func (t *clientTable) clients(now int64) int {
	n := 0
	for set := range clientSets {
		mu := &t.locks[set%clientLocks]
		mu.Lock()
		for _, w := range t.slots[set*clientWays : set*clientWays+clientWays] {
			if w.used && (w.active > 0 || w.tat > now) {
				n++
			}
		}
		mu.Unlock()
	}
	return n
}
