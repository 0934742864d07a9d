// Command l4soak runs balance-l4's chaos soak against a built binary and
// prints its summary; it exits 1 when a target is missed. `go test ./soak
// -run TestSoak -soak.duration=10m` does the same and builds the binary itself.
//
//	go build -o /tmp/balance-l4 ./cmd/balance-l4
//	go run ./soak/cmd/l4soak -binary /tmp/balance-l4 -duration 10m -output /tmp/balance-l4.log
//
// With -fleet it runs the fleet soak: three instances on a real three-member
// etcd cluster (internal/etcdtest: the etcd server built from tools/etcd on
// first use, so run it from inside the repository, or set BALANCE_ETCD_BIN).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/balancel4/balance-l4/internal/etcdtest"
	"github.com/balancel4/balance-l4/soak"
)

func main() {
	var o soak.Options
	flag.StringVar(&o.Binary, "binary", "", "the balance-l4 binary to soak (required)")
	flag.DurationVar(&o.Duration, "duration", 0, "length of the chaos phase (0 = 20s)")
	flag.IntVar(&o.Clients, "clients", 0, "concurrent payload clients (0 = 24)")
	flag.IntVar(&o.LongLived, "longlived", 0, "concurrent long-lived connections (0 = 12)")
	flag.IntVar(&o.MaxPayload, "maxpayload", 0, "largest payload in bytes (0 = 4 MiB)")
	flag.Uint64Var(&o.Seed, "seed", 0, "seed of the clients and the chaos (0 = from the clock)")
	fleet := flag.Bool("fleet", false, "three instances on a real three-member etcd cluster that the chaos hurts too")
	verbose := flag.Bool("v", false, "print every chaos action")
	output := flag.String("output", "", "also write balance-l4's whole output to this file")
	flag.Parse()
	if o.Binary == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "l4soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	o.Dir = dir
	if *verbose {
		o.Progress = os.Stdout
	}
	if *output != "" {
		f, err := os.Create(*output)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		defer f.Close()
		o.Output = f
	}
	var tb *cmdTB
	if *fleet {
		tb = newCmdTB(dir)
		o.Etcd = etcdtest.Start(tb, etcdtest.Options{})
	}
	code := run(o, os.Stdout)
	if tb != nil {
		tb.cleanup() // stops the etcd members
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(o soak.Options, w io.Writer) int {
	s, err := soak.Run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprint(w, s)
	if len(s.Failures()) > 0 {
		return 1
	}
	return 0
}
