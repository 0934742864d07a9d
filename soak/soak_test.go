package soak

import (
	"io"
	"os"
	"strings"
	"testing"
)

// testWriter sends progress lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSoak runs the chaos soak: 20 s of chaos by default (about 35 s of wall
// time in all), or -soak.duration=10m for the long run. It fails when any
// target of the summary is missed.
func TestSoak(t *testing.T) {
	var progress io.Writer
	if *soakVerbose {
		progress = testWriter{t}
	}
	var output io.Writer
	if *soakOutput != "" {
		f, err := os.Create(*soakOutput)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		output = f
	}
	s, err := Run(Options{
		Output:    output,
		Binary:    balanceBinary,
		Dir:       t.TempDir(),
		Duration:  *soakDuration,
		Clients:   *soakClients,
		LongLived: *soakLongLived,
		Seed:      *soakSeed,
		Progress:  progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + s.String())
	if f := s.Failures(); len(f) > 0 {
		t.Fatalf("soak missed %d targets (rerun with -soak.seed=%d):\n  %s", len(f), s.Seed, strings.Join(f, "\n  "))
	}
}
