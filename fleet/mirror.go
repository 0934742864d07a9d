package fleet

import "sort"

// entry is one operator key as last applied: its value, or a tombstone.
type entry struct {
	op      Operator
	present bool  // false: the key was deleted
	modRev  int64 // revision of the put or delete
}

// localChange is a change made with scope=local: it holds until a fleet-wide
// change to the same key (one newer than base) replaces it.
type localChange struct {
	op   Operator
	base int64 // the key's mod revision when the local change was made
}

// mirror is the fleet's operator state as this instance knows it. Every key
// is ordered by etcd's mod revision, so a late event never undoes a newer one.
type mirror struct {
	ops   map[Key]entry
	local map[Key]localChange
	opRev int64 // newest operator change applied
}

func newMirror() *mirror {
	return &mirror{ops: map[Key]entry{}, local: map[Key]localChange{}}
}

// set applies one key's new entry and reports whether what k asks for
// changed (a local change replaced by the fleet's counts as changed).
func (m *mirror) set(k Key, e entry) bool {
	old, known := m.ops[k]
	if known && old.modRev >= e.modRev {
		return false
	}
	m.ops[k] = e
	m.opRev = max(m.opRev, e.modRev)
	if l, ok := m.local[k]; ok && e.modRev > l.base {
		delete(m.local, k)
		return true
	}
	if _, ok := m.local[k]; ok {
		return false
	}
	return old.present != e.present || (e.present && !old.op.Same(e.op))
}

// resync replaces the mirror with a full read taken at revision rev, keeping
// only what is newer than it. It returns the keys whose wish changed.
func (m *mirror) resync(snap map[Key]entry, rev int64) []Key {
	var changed []Key
	for k, e := range snap {
		if m.set(k, e) {
			changed = append(changed, k)
		}
	}
	for k, old := range m.ops {
		if _, ok := snap[k]; ok || old.modRev > rev {
			continue
		}
		// Gone at some revision up to rev: a fleet change, newer than any
		// local change based on what was there.
		if old.present && m.set(k, entry{modRev: rev}) {
			changed = append(changed, k)
		}
		delete(m.ops, k) // a tombstone at or below rev orders nothing after it
	}
	for k, l := range m.local {
		if _, ok := m.ops[k]; !ok && l.base > 0 {
			// The key the local change was based on is gone: replaced.
			delete(m.local, k)
			changed = append(changed, k)
		}
	}
	sortKeys(changed)
	return changed
}

// setLocal records a change for this instance alone.
func (m *mirror) setLocal(k Key, op Operator) {
	m.local[k] = localChange{op: op, base: m.ops[k].modRev}
}

// want is what k asks for, and whether it is a local change.
func (m *mirror) want(k Key) (Operator, bool) {
	if l, ok := m.local[k]; ok {
		return l.op, true
	}
	if e := m.ops[k]; e.present {
		return e.op, false
	}
	return Operator{}, false
}

func sortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Service != ks[j].Service {
			return ks[i].Service < ks[j].Service
		}
		return ks[i].Backend < ks[j].Backend
	})
}

// Saved is the fleet state kept in the state file, so an instance restarted
// while etcd is unreachable starts with the fleet's drains.
type Saved struct {
	Name     string       `json:"name"`
	Revision int64        `json:"revision"`
	Operator []SavedEntry `json:"operator"`
	Local    []SavedEntry `json:"local"`
}

// SavedEntry is one operator key; ModRevision is the key's revision for a
// fleet entry and the revision it was based on for a local one.
type SavedEntry struct {
	Service     string   `json:"service"`
	Backend     string   `json:"backend"`
	Value       Operator `json:"value"`
	ModRevision int64    `json:"mod_revision"`
}

func (m *mirror) save(name string, rev int64) Saved {
	s := Saved{Name: name, Revision: rev, Operator: []SavedEntry{}, Local: []SavedEntry{}}
	for k, e := range m.ops {
		if e.present {
			s.Operator = append(s.Operator, SavedEntry{k.Service, k.Backend, e.op, e.modRev})
		}
	}
	for k, l := range m.local {
		s.Local = append(s.Local, SavedEntry{k.Service, k.Backend, l.op, l.base})
	}
	for _, l := range [][]SavedEntry{s.Operator, s.Local} {
		sort.Slice(l, func(i, j int) bool {
			return Key{l[i].Service, l[i].Backend}.String() < Key{l[j].Service, l[j].Backend}.String()
		})
	}
	return s
}

func (m *mirror) restore(s Saved) {
	for _, e := range s.Operator {
		m.ops[Key{e.Service, e.Backend}] = entry{op: e.Value, present: true, modRev: e.ModRevision}
		m.opRev = max(m.opRev, e.ModRevision)
	}
	for _, e := range s.Local {
		m.local[Key{e.Service, e.Backend}] = localChange{op: e.Value, base: e.ModRevision}
	}
}
