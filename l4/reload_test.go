package l4

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
)

// TestReloadBackends: added, removed and changed backends; an established
// connection to a removed backend survives; an added backend takes traffic
// only after its first check; operator weight and drain survive.
func TestReloadBackends(t *testing.T) {
	a := startBackend(t, sayName("a"))
	b := startBackend(t, echo)
	c := startBackend(t, sayName("c"))
	d := startBackend(t, sayName("d"))
	sc := testService("s", be("a", a.addr), be("b", b.addr), be("d", d.addr))
	sc.HealthCheck.Enabled = true
	rt, _ := startRuntime(t, testConfig(sc))

	// An established connection to b (round robin: a, then b).
	readName(t, rt, "s", 1)
	est := dialService(t, rt, "s")
	if _, err := est.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(est, make([]byte, 1)); err != nil {
		t.Fatalf("established connection: %v", err)
	}
	if _, err := rt.SetWeight("s", "a", 7, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Drain("s", "d", "test"); err != nil {
		t.Fatal(err)
	}

	next := testService("s", config.Backend{Name: "a", Address: a.addr, Weight: 2}, be("c", c.addr), be("d", d.addr))
	next.HealthCheck.Enabled = true
	rl, err := rt.Apply(testConfig(next))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rl.BackendsAdded, []string{"s/c"}) || !slices.Equal(rl.BackendsRemoved, []string{"s/b"}) ||
		!slices.Equal(rl.BackendsChanged, []string{"s/a"}) {
		t.Fatalf("reload result %+v", rl)
	}

	// c becomes eligible once its first (immediate) check passed.
	waitFor(t, "c to pass its first check", func() bool { return backendView(t, rt, "s", "c").Eligible })
	if _, err := rt.Backend("s", "b"); err == nil {
		t.Fatal("removed backend b is still listed")
	}
	va := backendView(t, rt, "s", "a")
	if va.Weight != 7 || va.ConfiguredWeight != 2 {
		t.Fatalf("a: weight %d configured %d, want the operator's 7 over the file's 2", va.Weight, va.ConfiguredWeight)
	}
	if vd := backendView(t, rt, "s", "d"); vd.State != "draining" {
		t.Fatalf("d: state %s after reload, want draining", vd.State)
	}
	if vd := backendView(t, rt, "s", "d"); vd.TotalConnections != 0 {
		t.Fatalf("d took %d connections while drained", vd.TotalConnections)
	}

	// The connection to b still works; new ones go to a and c only.
	if _, err := est.Write([]byte("y")); err != nil {
		t.Fatalf("established connection after reload: %v", err)
	}
	if _, err := io.ReadFull(est, make([]byte, 1)); err != nil {
		t.Fatalf("established connection after reload: %v", err)
	}
	got := countNames(t, rt, "s", 16)
	if got["a"]+got["c"] != 16 || got["a"] != 14 {
		t.Fatalf("after reload got %v, want 7:1 over a and c", got)
	}
	// The kept backend kept its counters.
	if va := backendView(t, rt, "s", "a"); va.TotalConnections < 15 {
		t.Fatalf("a's counters were reset: total %d", va.TotalConnections)
	}
}

// TestReloadServices: added, removed and re-listened services; an
// established connection of a removed service survives.
func TestReloadServices(t *testing.T) {
	srv := startBackend(t, echo)
	s1 := testService("one", be("a", srv.addr))
	s2 := testService("two", be("a", srv.addr))
	rt, _ := startRuntime(t, testConfig(s1, s2))
	est := dialService(t, rt, "two")
	if _, err := est.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(est, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	oldOne := rt.Addr("one").String()
	oldTwo := rt.Addr("two").String()

	moved := testService("one", be("a", srv.addr))
	moved.Listen = "127.0.0.2:0"
	s3 := testService("three", be("a", srv.addr))
	rl, err := rt.Apply(testConfig(moved, s3))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rl.ServicesAdded, []string{"three"}) || !slices.Equal(rl.ServicesRemoved, []string{"two"}) ||
		!slices.Equal(rl.ServicesChanged, []string{"one"}) {
		t.Fatalf("reload result %+v", rl)
	}
	if rt.Addr("two") != nil {
		t.Fatal("removed service still has an address")
	}
	if got := rt.Addr("one").String(); !strings.HasPrefix(got, "127.0.0.2:") {
		t.Fatalf("service one listens on %s, want 127.0.0.2", got)
	}
	for _, old := range []string{oldOne, oldTwo} {
		if c, err := net.DialTimeout("tcp", old, time.Second); err == nil {
			c.Close()
			t.Fatalf("old listener %s still accepts", old)
		}
	}
	if _, err := est.Write([]byte("y")); err != nil {
		t.Fatalf("connection of a removed service: %v", err)
	}
	if _, err := io.ReadFull(est, make([]byte, 1)); err != nil {
		t.Fatalf("connection of a removed service: %v", err)
	}
	for _, name := range []string{"one", "three"} {
		c := dialService(t, rt, name)
		if _, err := c.Write([]byte("z")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("service %s after reload: %v", name, err)
		}
	}
	if names := len(rt.Services()); names != 2 {
		t.Fatalf("%d services listed, want 2", names)
	}
}

// TestApplyFailsAtomically: a listener that cannot be opened fails the
// whole Apply, naming the address, and nothing changes.
func TestApplyFailsAtomically(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	rt, _ := startRuntime(t, testConfig(testService("s", be("a", srv.addr))))
	before := rt.Addr("s").String()

	added := testService("t", be("a", srv.addr))
	clash := testService("u", be("a", srv.addr))
	clash.Listen = busy.Addr().String()
	_, err = rt.Apply(testConfig(testService("s", be("a", srv.addr)), added, clash))
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Apply error = %v, want one naming %s and the OS error", err, busy.Addr())
	}
	if rt.Addr("t") != nil || rt.Addr("u") != nil || rt.Addr("s").String() != before {
		t.Fatal("a failed Apply changed the running services")
	}
	if got := readName(t, rt, "s", 1); got != "a" {
		t.Fatalf("service after a failed Apply: %q", got)
	}
}

// TestOperatorState: the state round-trips, survives into a new runtime
// before its first Apply, and SetWeight rejects bad weights.
func TestOperatorState(t *testing.T) {
	srv := startBackend(t, sayName("a"))
	cfg := testConfig(testService("s", be("a", srv.addr), be("b", srv.addr+"")))
	cfg.Services[0].Backends[1].Name = "b"
	rt, _ := startRuntime(t, cfg)
	changes := 0
	rt.OnOperatorChange(func() { changes++ })
	if _, err := rt.SetWeight("s", "a", 300, "test"); err == nil {
		t.Fatal("weight 300 accepted")
	}
	if _, err := rt.SetWeight("s", "a", 5, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Drain("s", "b", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Drain("s", "b", "test"); err != nil { // idempotent, no change
		t.Fatal(err)
	}
	if changes != 2 {
		t.Fatalf("%d operator changes notified, want 2", changes)
	}
	st := rt.OperatorState()
	if len(st.Backends) != 2 || st.Backends[0].Weight == nil || *st.Backends[0].Weight != 5 || !st.Backends[1].Drained {
		t.Fatalf("operator state %+v", st)
	}

	rt2 := NewRuntime(Options{Log: zerologDiscard()})
	rt2.RestoreOperatorState(st)
	if _, err := rt2.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	defer rt2.Shutdown(t.Context())
	if v := backendView(t, rt2, "s", "b"); v.State != "draining" {
		t.Fatalf("restored b: state %s", v.State)
	}
	if v := backendView(t, rt2, "s", "a"); v.Weight != 5 {
		t.Fatalf("restored a: weight %d", v.Weight)
	}
}

// TestReloadHandsAddressOver: a fixed address that one service gives up and
// another takes in the same reload moves with its listener (no
// "address already in use"); two services can swap addresses.
func TestReloadHandsAddressOver(t *testing.T) {
	a := startBackend(t, sayName("a"))
	b := startBackend(t, sayName("b"))
	p1, p2 := closedPort(t), closedPort(t)
	one := testService("one", be("a", a.addr))
	one.Listen = p1
	two := testService("two", be("b", b.addr))
	two.Listen = p2
	rt, _ := startRuntime(t, testConfig(one, two))
	if got := readName(t, rt, "one", 1); got != "a" {
		t.Fatalf("one: %q", got)
	}

	// Swap the addresses.
	one.Listen, two.Listen = p2, p1
	if _, err := rt.Apply(testConfig(one, two)); err != nil {
		t.Fatalf("swapping addresses: %v", err)
	}
	if rt.Addr("one").String() != p2 || rt.Addr("two").String() != p1 {
		t.Fatalf("after the swap one=%s two=%s", rt.Addr("one"), rt.Addr("two"))
	}
	if got := readName(t, rt, "two", 1); got != "b" {
		t.Fatalf("two after the swap: %q", got)
	}

	// Rename: "uno" takes over one's address as "one" goes away.
	uno := testService("uno", be("a", a.addr))
	uno.Listen = p2
	if _, err := rt.Apply(testConfig(uno, two)); err != nil {
		t.Fatalf("renaming: %v", err)
	}
	if got := readName(t, rt, "uno", 1); got != "a" || rt.Addr("uno").String() != p2 {
		t.Fatalf("uno: %q on %s", got, rt.Addr("uno"))
	}
}
