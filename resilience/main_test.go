package resilience

import (
	"go/build"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/balancel4/balance-l4/internal/testclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock shared by the code under test and the test.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock { return testclock.New(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) }

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
