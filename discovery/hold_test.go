package discovery

import (
	"slices"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
)

func names(bs []config.Backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

func be(name string) config.Backend { return config.Backend{Name: name, Address: name, Weight: 1} }

func TestHoldKeepsMissingBackendsForHold(t *testing.T) {
	h := newHoldSet(30 * time.Second)
	t0 := time.Unix(1000, 0)
	set, _ := h.answer(t0, []config.Backend{be("a"), be("b")})
	if !slices.Equal(names(set), []string{"a", "b"}) {
		t.Fatalf("first answer: %v", names(set))
	}
	// b goes missing: kept, and reported once.
	set, missing := h.answer(t0.Add(5*time.Second), []config.Backend{be("a")})
	if !slices.Equal(names(set), []string{"a", "b"}) || !slices.Equal(missing, []string{"b"}) {
		t.Fatalf("b missing: set %v, missing %v", names(set), missing)
	}
	set, missing = h.answer(t0.Add(30*time.Second), []config.Backend{be("a")})
	if !slices.Equal(names(set), []string{"a", "b"}) || missing != nil {
		t.Fatalf("b missing 25 s: set %v, missing %v", names(set), missing)
	}
	// Missing for hold (30 s from the first answer without it): gone.
	set, _ = h.answer(t0.Add(35*time.Second), []config.Backend{be("a")})
	if !slices.Equal(names(set), []string{"a"}) {
		t.Fatalf("b missing 30 s: set %v", names(set))
	}
}

func TestHoldEmptyAnswerNeverEmptiesAtOnce(t *testing.T) {
	h := newHoldSet(10 * time.Second)
	t0 := time.Unix(1000, 0)
	h.answer(t0, []config.Backend{be("a"), be("b")})
	for i := 1; i < 10; i++ {
		set, _ := h.answer(t0.Add(time.Duration(i)*time.Second), nil)
		if len(set) != 2 {
			t.Fatalf("empty answer %d s in emptied the pool: %v", i, names(set))
		}
	}
	if set, _ := h.answer(t0.Add(11*time.Second), nil); len(set) != 0 {
		t.Fatalf("still %v after hold", names(set))
	}
}

func TestHoldFlappingRecordStays(t *testing.T) {
	h := newHoldSet(10 * time.Second)
	t0 := time.Unix(1000, 0)
	for i := range 20 {
		var ans []config.Backend
		if i%2 == 0 {
			ans = []config.Backend{be("a")}
		}
		if set, _ := h.answer(t0.Add(time.Duration(i)*4*time.Second), ans); len(set) != 1 {
			t.Fatalf("a flapping record left the pool at answer %d", i)
		}
	}
}

func TestHoldZeroRemovesAtOnceAndUpdatesData(t *testing.T) {
	h := newHoldSet(0)
	t0 := time.Unix(1000, 0)
	h.answer(t0, []config.Backend{be("a"), be("b")})
	w := be("a")
	w.Weight = 7
	set, _ := h.answer(t0.Add(time.Second), []config.Backend{w})
	if len(set) != 1 || set[0].Weight != 7 {
		t.Fatalf("set = %+v, want a with weight 7", set)
	}
}
