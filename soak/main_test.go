package soak

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

var (
	soakDuration  = flag.Duration("soak.duration", 0, "length of TestSoak's chaos phase (0 = the short default, 20s)")
	soakClients   = flag.Int("soak.clients", 0, "concurrent payload clients in TestSoak (0 = 24)")
	soakLongLived = flag.Int("soak.longlived", 0, "concurrent long-lived connections in TestSoak (0 = 12)")
	soakSeed      = flag.Uint64("soak.seed", 0, "seed of TestSoak's clients and chaos (0 = from the clock)")
	soakVerbose   = flag.Bool("soak.verbose", false, "log every chaos action of TestSoak")
	binaryFlag    = flag.String("soak.binary", "", "use this balance-l4 binary instead of building one")
	soakOutput    = flag.String("soak.output", "", "write balance-l4's whole output in TestSoak to this file")
	soakFleet     = flag.Bool("soak.fleet", false, "run TestFleetSoak: three instances on a real three-member etcd cluster that the chaos hurts too")
)

// binary is the balance-l4 under test, built once in TestMain.
var balanceBinary string

// TestMain builds the binary (without -race: see Build), runs the tests and
// then checks for leaked goroutines, as goleak.VerifyTestMain does.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "balance-l4-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	balanceBinary = *binaryFlag
	if balanceBinary == "" {
		balanceBinary = filepath.Join(dir, "balance-l4")
		if err := Build(".", balanceBinary); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
