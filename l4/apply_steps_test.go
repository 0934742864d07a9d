package l4

import (
	"io"
	"slices"
	"testing"

	"github.com/balancel4/balance-l4/config"
)

// TestReconcileBackends calls the reconcile step directly, as a source of
// backends other than the file would: an unchanged backend stays the same
// backend (drain flag, counters), a removed one is retired while its
// established connection keeps flowing, an added one takes traffic after
// its first check, and only check targets that must change are touched.
func TestReconcileBackends(t *testing.T) {
	a := startBackend(t, sayName("a"))
	b := startBackend(t, echo)
	c := startBackend(t, sayName("c"))
	sc := testService("s", be("a", a.addr), be("b", b.addr))
	sc.HealthCheck.Enabled = true
	rt, _ := startRuntime(t, testConfig(sc))
	waitFor(t, "a and b to pass their first check", func() bool {
		return backendView(t, rt, "s", "a").Eligible && backendView(t, rt, "s", "b").Eligible
	})

	// Round robin: a, then an established connection to b.
	if got := readName(t, rt, "s", 1); got != "a" {
		t.Fatalf("first connection went to %q", got)
	}
	est := dialService(t, rt, "s")
	echoOn(t, est, "x")
	if _, err := rt.Drain("s", "a", "test"); err != nil {
		t.Fatal(err)
	}

	s := rt.service("s")
	rt.mu.Lock()
	oldA, oldB := s.backends[backendKey("a", a.addr)], s.backends[backendKey("b", b.addr)]
	want := []config.Backend{{Name: "a", Address: a.addr, Weight: 3}, be("c", c.addr)}
	added, removed, changed, ops := rt.reconcileBackends(s, want)
	newA := s.backends[backendKey("a", a.addr)]
	rt.mu.Unlock()
	rt.applyMonitorOps(ops)

	if !slices.Equal(added, []string{"s/c"}) || !slices.Equal(removed, []string{"s/b"}) || !slices.Equal(changed, []string{"s/a"}) {
		t.Fatalf("added %v removed %v changed %v", added, removed, changed)
	}
	// a's check runs with unchanged settings: only b's target goes, c's comes.
	var opIDs []string
	for _, op := range ops {
		if op.remove != "" {
			opIDs = append(opIDs, "-"+op.remove)
		} else {
			opIDs = append(opIDs, "+"+op.add.ID)
		}
	}
	slices.Sort(opIDs)
	if !slices.Equal(opIDs, []string{"+s/c", "-s/b"}) {
		t.Fatalf("check changes %v, want +s/c -s/b", opIDs)
	}

	if newA != oldA {
		t.Fatal("the unchanged backend a was replaced")
	}
	va := backendView(t, rt, "s", "a")
	if va.State != "draining" || va.TotalConnections != 1 || va.ConfiguredWeight != 3 {
		t.Fatalf("a after reconcile: state %s, total %d, configured weight %d; want draining, 1, 3",
			va.State, va.TotalConnections, va.ConfiguredWeight)
	}
	if !oldB.removed.Load() {
		t.Fatal("removed backend b is not marked removed")
	}
	if _, err := rt.Backend("s", "b"); err == nil {
		t.Fatal("removed backend b is still listed")
	}

	// b's connection still flows; new ones go to c (a is drained) once its
	// first check passed.
	echoOn(t, est, "y")
	waitFor(t, "c to pass its first check", func() bool { return backendView(t, rt, "s", "c").Eligible })
	if got := readName(t, rt, "s", 1); got != "c" {
		t.Fatalf("new connection went to %q, want c", got)
	}

	// Once b's connection ended, the same list again forgets b and changes
	// nothing else.
	_ = est.Close()
	waitFor(t, "b's connection to end", func() bool { return oldB.active.Load() == 0 })
	rt.mu.Lock()
	added, removed, changed, ops = rt.reconcileBackends(s, want)
	left := len(s.removed)
	rt.mu.Unlock()
	if added != nil || removed != nil || changed != nil || ops != nil {
		t.Fatalf("same list again: added %v removed %v changed %v ops %v", added, removed, changed, ops)
	}
	if left != 0 {
		t.Fatalf("%d removed backends still kept after their connections ended", left)
	}
}

// echoOn writes msg to an echoed connection and reads it back.
func echoOn(t testing.TB, c io.ReadWriter, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("writing: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("reading back %q: %q, %v", msg, buf, err)
	}
}
