package soak

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/internal/etcdtest"
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
	runSoak(t, nil)
}

// TestFleetSoak is the fleet soak (README.md): three instances on a real
// three-member etcd cluster, whose members the chaos kills, stops and takes
// quorum from as well. It runs with -soak.fleet only, as it would take the
// default test run past 90 s; -soak.duration and the other flags apply.
func TestFleetSoak(t *testing.T) {
	if !*soakFleet {
		t.Skip("the fleet soak runs with -soak.fleet")
	}
	runSoak(t, etcdtest.Start(t, etcdtest.Options{}))
}

// runSoak runs TestSoak or, with a cluster, TestFleetSoak.
func runSoak(t *testing.T, etcd *etcdtest.Cluster) {
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
		Etcd:      etcd,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + s.String())
	if f := s.Failures(); len(f) > 0 {
		rerun := fmt.Sprintf("-soak.seed=%d", s.Seed)
		if etcd != nil {
			rerun += " -soak.fleet"
		}
		t.Fatalf("soak missed %d targets (rerun with %s):\n  %s", len(f), rerun, strings.Join(f, "\n  "))
	}
}
