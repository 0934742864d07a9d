package engine

// wheel is a hashed timer wheel over the loop's slots: each slot of the wheel
// heads a list of records linked through their t* fields. A record is in the
// wheel at most once; it is removed when its connection ends. Idle timeouts
// are checked lazily: the entry fires at the deadline of when it was set, and
// the check re-arms it if bytes moved since.
type wheel struct {
	tick  int64    // ns per slot
	heads []uint32 // record slot+1, 0: empty
	cur   int64    // the last tick processed
	n     int      // entries
}

const wheelSlots = 1024

func newWheel(tick int64, now int64) wheel {
	return wheel{tick: tick, heads: make([]uint32, wheelSlots), cur: now / tick}
}

// add arms r (slot idx) to fire at the first tick at or after when.
func (w *wheel) add(t *slots, idx uint32, r *record, when int64) {
	if r.armed {
		w.remove(t, r)
	}
	at := (when + w.tick - 1) / w.tick
	if at <= w.cur {
		at = w.cur + 1
	}
	s := uint32(at % wheelSlots)
	r.tslot, r.trounds, r.armed = s, uint32((at-w.cur-1)/wheelSlots), true
	r.tprev, r.tnext = 0, w.heads[s]
	if r.tnext != 0 {
		t.rec(r.tnext - 1).tprev = idx + 1
	}
	w.heads[s] = idx + 1
	w.n++
}

// remove disarms r.
func (w *wheel) remove(t *slots, r *record) {
	if !r.armed {
		return
	}
	if r.tprev != 0 {
		t.rec(r.tprev - 1).tnext = r.tnext
	} else {
		w.heads[r.tslot] = r.tnext
	}
	if r.tnext != 0 {
		t.rec(r.tnext - 1).tprev = r.tprev
	}
	r.tnext, r.tprev, r.armed = 0, 0, false
	w.n--
}

// advance fires every entry due by now: fire gets each, disarmed, and may
// add it again.
func (w *wheel) advance(t *slots, now int64, fire func(idx uint32, r *record)) {
	target := now / w.tick
	if w.n == 0 {
		w.cur = max(w.cur, target)
		return
	}
	for w.cur < target {
		w.cur++
		s := uint32(w.cur % wheelSlots)
		next := w.heads[s]
		for next != 0 {
			idx := next - 1
			r := t.rec(idx)
			next = r.tnext
			if r.trounds > 0 {
				r.trounds--
				continue
			}
			w.remove(t, r)
			fire(idx, r)
		}
		if w.n == 0 {
			w.cur = target
		}
	}
}

// wait returns how long the loop may sleep: -1 for no timer, else ms until
// the next non-empty slot's tick (at least 1).
func (w *wheel) wait(now int64) int {
	if w.n == 0 {
		return -1
	}
	for i := int64(1); i <= wheelSlots; i++ {
		if w.heads[(w.cur+i)%wheelSlots] != 0 {
			ms := ((w.cur+i)*w.tick - now + 999_999) / 1_000_000
			return int(max(ms, 1))
		}
	}
	return int(max(w.tick/1_000_000, 1))
}
