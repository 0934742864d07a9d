package discovery

import (
	"sort"
	"time"

	"github.com/balancel4/balance-l4/config"
)

// holdSet is what one source has found, with the rule that a backend leaves
// only after it has been missing from good answers for hold.
type holdSet struct {
	hold time.Duration
	seen map[string]*seenBackend // by name
}

type seenBackend struct {
	b             config.Backend
	missingSince  time.Time // zero while present in the last answer
	missingReport bool      // a "missing" notice was given
}

func newHoldSet(hold time.Duration) *holdSet {
	return &holdSet{hold: hold, seen: map[string]*seenBackend{}}
}

// answer records a good answer taken at now and returns the set to serve,
// sorted by name, and the names that just went missing (kept for hold).
func (h *holdSet) answer(now time.Time, found []config.Backend) (set []config.Backend, missing []string) {
	present := make(map[string]bool, len(found))
	for _, b := range found {
		present[b.Name] = true
		if s := h.seen[b.Name]; s != nil {
			s.b, s.missingSince, s.missingReport = b, time.Time{}, false
		} else {
			h.seen[b.Name] = &seenBackend{b: b}
		}
	}
	for name, s := range h.seen {
		if present[name] {
			continue
		}
		if s.missingSince.IsZero() {
			s.missingSince = now
		}
		if now.Sub(s.missingSince) >= h.hold {
			delete(h.seen, name)
			continue
		}
		if !s.missingReport {
			s.missingReport = true
			missing = append(missing, name)
		}
	}
	return h.current(), missing
}

// current is the set to serve, sorted by name.
func (h *holdSet) current() []config.Backend {
	out := make([]config.Backend, 0, len(h.seen))
	for _, s := range h.seen {
		out = append(out, s.b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sameSet(a, b []config.Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
