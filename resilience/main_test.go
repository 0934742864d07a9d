package resilience

import (
	"go/build"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock shared by the code under test and the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestImportsArePolicyOnly keeps the package free of I/O: it may import only
// these standard packages (tests excluded).
func TestImportsArePolicyOnly(t *testing.T) {
	allowed := []string{
		"context", "errors", "fmt", "math", "math/rand/v2",
		"strconv", "sync", "sync/atomic", "time",
	}
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatalf("reading package: %v", err)
	}
	for _, imp := range pkg.Imports {
		if !slices.Contains(allowed, imp) {
			t.Errorf("resilience imports %q; it must stay pure policy (allowed: %v)", imp, allowed)
		}
	}
}
