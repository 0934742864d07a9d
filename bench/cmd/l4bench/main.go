// Command l4bench measures balance-l4 side by side with the proxies users would
// pick instead (HAProxy, nginx stream, the obvious Go proxy) and with no proxy at
// all, in one run on one machine, as /work/shared/BENCH.md describes. It starts
// its own backends and every peer as separate processes on 127.0.0.1, drives the
// loads, reads each proxy's cost from /proc, and prints one Markdown table of
// medians with ratios, which -out writes into BENCHMARKS.md, with a chart of
// every figure per peer in bench/chart.svg beside it.
//
// Usage, from the repository root:
//
//	go run ./bench/cmd/l4bench -runs 3 -out BENCHMARKS.md
//	go run ./bench/cmd/l4bench -quick -peers direct,go-proxy
//
// The same binary is its own backend and Go-proxy child (-serve-backend,
// -serve-goproxy), so their CPU is not the load generator's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/child"
	"github.com/balancel4/balance-l4/bench/internal/controlplane"
	"github.com/balancel4/balance-l4/bench/internal/peer"
	"github.com/balancel4/balance-l4/bench/internal/report"
	"github.com/balancel4/balance-l4/bench/internal/suite"
)

func main() {
	args := os.Args[1:]
	if child.IsChildMode(args) {
		os.Exit(child.Main(args))
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "l4bench: finding my own binary:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, args, os.Stdout, os.Stderr, child.SelfSpawner(exe))
	stop()
	os.Exit(code)
}

// flags are the command line, parsed.
type flags struct {
	runs         int
	duration     time.Duration
	quick        bool
	peers        []string
	idle         []int
	loads        []string
	workers      int
	out          string
	chart        string
	repo         string
	balanceL4    string
	balanceL4B   string
	haproxy      string
	nginx        string
	controlPlane bool
	keep         bool
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("l4bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.runs, "runs", 3, "interleaved repetitions of every measurement (medians are reported)")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "length of each timed load")
	fs.BoolVar(&f.quick, "quick", false, "smoke test: 1 run of 1 s, 1 000 idle connections unless -idle says, short control-plane windows")
	peers := fs.String("peers", peer.DefaultSet, "comma-separated peers to compare")
	idle := fs.String("idle", "3000,9000", "comma-separated counts of idle connections to hold")
	loads := fs.String("loads", strings.Join(suite.Loads, ","), "comma-separated loads to run")
	fs.IntVar(&f.workers, "workers", 8, "connection-rate workers")
	fs.StringVar(&f.out, "out", "", "Markdown file to write the results into (its l4bench block is replaced)")
	fs.StringVar(&f.chart, "chart", report.ChartFile, "with -out: the SVG chart of every figure per peer to write and link, relative to the -out file's directory unless absolute (\"\" for none)")
	fs.StringVar(&f.repo, "repo", "", "repository root to build ./cmd/balance-l4 in (default: the module of the working directory)")
	fs.StringVar(&f.balanceL4, "balance-l4", "", "use this balance-l4 binary instead of building one")
	fs.StringVar(&f.balanceL4B, "balance-l4-b", "", "a second balance-l4 binary, run as peer balance-l4-b for an A/B comparison")
	fs.StringVar(&f.haproxy, "haproxy", "", "haproxy binary (default: from PATH or /usr/sbin)")
	fs.StringVar(&f.nginx, "nginx", "", "nginx binary (default: from PATH or /usr/sbin)")
	fs.BoolVar(&f.controlPlane, "control-plane", true, "measure balance-l4's health checks at 10 000 backends and its dashboard at 1 000")
	fs.BoolVar(&f.keep, "keep", false, "keep the scratch directory with configurations and logs")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, name := range strings.Split(*peers, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(peer.Names, name) {
			return f, fmt.Errorf("-peers: unknown peer %q (want some of %s)", name, peer.DefaultSet)
		}
		f.peers = append(f.peers, name)
	}
	if len(f.peers) == 0 {
		return f, errors.New("-peers: no peer named")
	}
	for _, s := range strings.Split(*idle, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return f, fmt.Errorf("-idle: %q is not a positive count", s)
		}
		f.idle = append(f.idle, k)
	}
	for _, l := range strings.Split(*loads, ",") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if !slices.Contains(suite.Loads, l) {
			return f, fmt.Errorf("-loads: unknown load %q (want some of %s)", l, strings.Join(suite.Loads, ","))
		}
		f.loads = append(f.loads, l)
	}
	if len(f.loads) == 0 {
		return f, errors.New("-loads: no load named")
	}
	if f.quick {
		f.runs, f.duration = 1, time.Second
		idleSet := false
		fs.Visit(func(fl *flag.Flag) { idleSet = idleSet || fl.Name == "idle" })
		if !idleSet {
			f.idle = []int{1000}
		}
	}
	return f, nil
}

// run is the command without the process around it; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, spawn peer.Spawner) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "l4bench:", err)
		return 2
	}
	if err := bench(ctx, f, args, stdout, stderr, spawn); err != nil {
		fmt.Fprintln(stderr, "l4bench:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, f flags, args []string, stdout, stderr io.Writer, spawn peer.Spawner) error {
	if err := raiseFileLimit(slices.Max(f.idle)); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "l4bench-")
	if err != nil {
		return fmt.Errorf("making a scratch directory: %w", err)
	}
	if f.keep {
		fmt.Fprintln(stderr, "l4bench: configurations and logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	haproxy, _ := lookBinary(f.haproxy, "haproxy")
	nginx, _ := lookBinary(f.nginx, "nginx")
	machine := report.ReadMachine(commandLine(args), haproxy, nginx)
	fmt.Fprintf(stderr, "l4bench: load average %s\n", machine.Load)

	env := peer.Env{Dir: dir, Spawn: spawn, HAProxy: haproxy, Nginx: nginx, BalanceL4B: f.balanceL4B}
	if slices.Contains(f.peers, peer.BalanceL4) || f.controlPlane {
		env.BalanceL4, env.BuildErr = buildBalanceL4(ctx, f, dir, stderr)
	}
	be, err := peer.StartBackends(ctx, spawn, dir, "backends", 2, 2)
	if err != nil {
		return err
	}
	defer be.Stop()
	env.Backends = be.Addrs

	var peers []peer.Peer
	for _, name := range f.peers {
		p, err := peer.New(name, env)
		if err != nil {
			return err
		}
		peers = append(peers, p)
	}
	opts := suite.Options{Runs: f.runs, Duration: f.duration, ConnRateWorkers: f.workers, IdleCounts: f.idle, Loads: f.loads, Log: stderr}
	if f.quick {
		opts.Settle = 100 * time.Millisecond
	}
	res, err := suite.Run(ctx, opts, peers)
	if err != nil {
		return err
	}
	rep := report.Report{Machine: machine, Suite: res}
	if f.controlPlane {
		controlPlane(ctx, f, env, dir, stderr, &rep)
	}
	rep.LoadAtEnd = report.LoadAverage()

	var chartPath string
	if f.out != "" && f.chart != "" {
		chartPath, rep.ChartLink = chartLocation(f.out, f.chart)
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if f.out == "" {
		return nil
	}
	if chartPath != "" {
		if err := os.MkdirAll(filepath.Dir(chartPath), 0o755); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
		if err := os.WriteFile(chartPath, rep.Chart(), 0o644); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
	}
	return report.WriteFile(f.out, md, fileHeader)
}

// chartLocation is where to write the chart given with -chart (relative to the
// directory of the -out file unless absolute), and the link to it from that file.
func chartLocation(out, chart string) (path, link string) {
	dir := filepath.Dir(out)
	path = chart
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	absDir, err1 := filepath.Abs(dir)
	absPath, err2 := filepath.Abs(path)
	link = absPath
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(absDir, absPath); err == nil {
			link = rel
		}
	}
	return path, filepath.ToSlash(link)
}

// fileHeader starts a new BENCHMARKS.md.
const fileHeader = `# balance-l4 benchmarks

Reproduce with one command from the repository root:

    bash bench/run.sh            # = go run ./bench/cmd/l4bench -runs 3 -out BENCHMARKS.md
    bash bench/run.sh --install  # first installs HAProxy and nginx's stream module (Debian)

bench/README.md explains the figures, the method and the peers' configurations.

`

func controlPlane(ctx context.Context, f flags, env peer.Env, dir string, stderr io.Writer, rep *report.Report) {
	if env.BalanceL4 == "" {
		why := fmt.Sprintf("balance-l4 was not built: %v", env.BuildErr)
		rep.HealthErr, rep.DashboardErr = why, why
		return
	}
	o := controlplane.Options{BalanceL4: env.BalanceL4, Dir: dir, Spawn: env.Spawn, Log: stderr}
	load := controlplane.HealthLoad{}
	if f.quick {
		load.Warmup, load.Window = time.Second, 2*time.Second
	}
	if h, err := controlplane.HealthChecks(ctx, o, load); err != nil {
		rep.HealthErr = err.Error()
		fmt.Fprintln(stderr, "l4bench: health checks at scale:", err)
	} else {
		rep.Health = &h
	}
	if d, err := controlplane.Dashboard(ctx, o, 10, 100); err != nil {
		rep.DashboardErr = err.Error()
		fmt.Fprintln(stderr, "l4bench: dashboard at scale:", err)
	} else {
		rep.Dashboard = &d
	}
}

// buildBalanceL4 returns the balance-l4 binary to use: the one given, or one built
// from the repository; the error says why there is none.
func buildBalanceL4(ctx context.Context, f flags, dir string, stderr io.Writer) (string, error) {
	if f.balanceL4 != "" {
		if _, err := exec.LookPath(f.balanceL4); err != nil {
			return "", fmt.Errorf("-balance-l4: %w", err)
		}
		return f.balanceL4, nil
	}
	repo := f.repo
	if repo == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		if err != nil || gomod == "" || gomod == os.DevNull {
			return "", fmt.Errorf("finding the repository (run from it or pass -repo): go env GOMOD: %q, %v", gomod, err)
		}
		repo = filepath.Dir(gomod)
	}
	bin := filepath.Join(dir, "balance-l4")
	fmt.Fprintln(stderr, "l4bench: building ./cmd/balance-l4 in", repo)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/balance-l4")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/balance-l4: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// raiseFileLimit lifts the soft limit on open files to the hard one (Go does so
// at start too) and checks that holding k idle connections fits.
func raiseFileLimit(k int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the open-file limit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-file limit to %d: %w", lim.Max, err)
	}
	if need := uint64(k) + 1000; lim.Cur < need {
		return fmt.Errorf("open-file limit %d is below the %d that %d idle connections need (ulimit -n)", lim.Cur, need, k)
	}
	return nil
}

func lookBinary(configured, name string) (string, error) {
	if configured != "" {
		return exec.LookPath(configured)
	}
	for _, candidate := range []string{name, "/usr/sbin/" + name} {
		if p, err := exec.LookPath(candidate); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// commandLine is how to repeat this run.
func commandLine(args []string) string {
	parts := []string{"go run ./bench/cmd/l4bench"}
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
