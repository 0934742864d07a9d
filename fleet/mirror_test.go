package fleet

import (
	"slices"
	"testing"
)

var (
	kA = Key{"web", "a"}
	kB = Key{"web", "b"}
)

func drained(rev int64) entry { return entry{op: Operator{Drain: true}, present: true, modRev: rev} }

func TestMirrorOrdersByModRevision(t *testing.T) {
	m := newMirror()
	if !m.set(kA, drained(5)) {
		t.Fatal("first drain not a change")
	}
	// A late, older event (the watch after the write's own answer) changes nothing.
	if m.set(kA, entry{modRev: 4}) {
		t.Fatal("older delete applied")
	}
	if op, _ := m.want(kA); !op.Drain {
		t.Fatal("older delete undid a newer drain")
	}
	// The same value again at a newer revision is not a change.
	if m.set(kA, drained(6)) {
		t.Fatal("same wish counted as a change")
	}
	if !m.set(kA, entry{modRev: 7}) {
		t.Fatal("newer delete not applied")
	}
	if op, _ := m.want(kA); op.Drain {
		t.Fatal("still draining after delete")
	}
	if m.opRev != 7 {
		t.Fatalf("opRev = %d, want 7", m.opRev)
	}
}

func TestMirrorResync(t *testing.T) {
	m := newMirror()
	m.set(kA, drained(3))
	m.set(kB, drained(9)) // written by us after the snapshot below was taken
	// A full read at revision 8 no longer has kA (deleted meanwhile) and
	// cannot have kB yet: kA goes, kB stays.
	changed := m.resync(map[Key]entry{}, 8)
	if !slices.Equal(changed, []Key{kA}) {
		t.Fatalf("changed = %v, want [kA]", changed)
	}
	if op, _ := m.want(kA); op.Drain {
		t.Fatal("kA still draining")
	}
	if op, _ := m.want(kB); !op.Drain {
		t.Fatal("kB's newer drain lost to an older snapshot")
	}
	// Nothing new: nothing changes.
	if changed := m.resync(map[Key]entry{kB: drained(9)}, 10); len(changed) != 0 {
		t.Fatalf("changed = %v, want none", changed)
	}
}

func TestMirrorLocalChangeHoldsUntilFleetChange(t *testing.T) {
	m := newMirror()
	m.set(kA, drained(5))
	m.setLocal(kA, Operator{}) // undrained here only
	if op, local := m.want(kA); op.Drain || !local {
		t.Fatalf("want = %+v local=%v, want undrained and local", op, local)
	}
	// A resync that finds the same key unchanged keeps the local change.
	if changed := m.resync(map[Key]entry{kA: drained(5)}, 12); len(changed) != 0 {
		t.Fatalf("resync changed %v", changed)
	}
	if _, local := m.want(kA); !local {
		t.Fatal("local change lost without a fleet change")
	}
	// The next fleet-wide change to the key replaces it.
	if !m.set(kA, drained(13)) {
		t.Fatal("fleet change did not replace the local one")
	}
	if op, local := m.want(kA); !op.Drain || local {
		t.Fatalf("want = %+v local=%v after fleet change", op, local)
	}

	// A local change on a key the fleet never wrote is replaced by its creation...
	m.setLocal(kB, Operator{Drain: true})
	if m.resync(map[Key]entry{kA: drained(13)}, 14) != nil {
		t.Fatal("resync without kB dropped its local change")
	}
	if changed := m.resync(map[Key]entry{kA: drained(13), kB: {present: true, modRev: 15}}, 15); !slices.Equal(changed, []Key{kB}) {
		t.Fatalf("changed = %v, want [kB]", changed)
	}
	if _, local := m.want(kB); local {
		t.Fatal("kB still local after the fleet wrote it")
	}
	// ...and a local change on a key the fleet then deletes, by the delete.
	m.setLocal(kA, Operator{})
	if changed := m.resync(map[Key]entry{kB: {present: true, modRev: 15}}, 20); !slices.Equal(changed, []Key{kA}) {
		t.Fatalf("changed = %v, want [kA]", changed)
	}
	if op, local := m.want(kA); op.Drain || local {
		t.Fatalf("want = %+v local=%v after fleet delete", op, local)
	}
}

func TestMirrorSaveRestore(t *testing.T) {
	m := newMirror()
	m.set(kA, entry{op: Operator{Drain: true, Weight: new(3)}, present: true, modRev: 4})
	m.set(kB, entry{modRev: 6}) // a tombstone is not saved
	m.setLocal(kB, Operator{Weight: new(0)})
	s := m.save("prod", 9)
	if s.Revision != 9 || len(s.Operator) != 1 || len(s.Local) != 1 {
		t.Fatalf("saved = %+v", s)
	}
	r := newMirror()
	r.restore(s)
	if op, local := r.want(kA); !op.Drain || *op.Weight != 3 || local {
		t.Fatalf("restored kA = %+v local=%v", op, local)
	}
	if op, local := r.want(kB); *op.Weight != 0 || !local {
		t.Fatalf("restored kB = %+v local=%v", op, local)
	}
	// The restored entry orders later events as the original did.
	if r.set(kA, entry{modRev: 3}) {
		t.Fatal("older event applied over a restored entry")
	}
}
