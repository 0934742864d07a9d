// Package child runs the benchmark binary's child modes: -serve-backend (echo and
// sink servers), -serve-goproxy (the obvious Go proxy) and -serve-eventloop (an
// epoll event-loop proxy in Go, package eventloop). They run as separate
// processes so that the CPU of backends and proxy is not the load generator's, and
// so that /proc measures each one alone.
//
// The benchmark binary starts itself in a child mode; a test binary cannot take
// those flags, so tests start themselves with the arguments in an environment
// variable instead (TestSpawner) and call ExitIfChild first in TestMain.
package child

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/balancel4/balance-l4/bench/internal/backend"
	"github.com/balancel4/balance-l4/bench/internal/eventloop"
	"github.com/balancel4/balance-l4/bench/internal/goproxy"
)

// Child-mode flags; one of them, first on the command line, selects the mode.
const (
	ServeBackend   = "-serve-backend"
	ServeGoProxy   = "-serve-goproxy"
	ServeEventLoop = "-serve-eventloop"
)

// envArgs carries a test binary's child-mode arguments, newline-separated.
const envArgs = "L4BENCH_CHILD_ARGS"

// IsChildMode says whether args (without the program name) select a child mode.
func IsChildMode(args []string) bool {
	return len(args) > 0 && (args[0] == ServeBackend || args[0] == ServeGoProxy || args[0] == ServeEventLoop)
}

// Main runs a child mode until SIGTERM or SIGINT and returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "l4bench:", err)
		return 1
	}
	return 0
}

// Run serves the child mode args select until ctx ends. The backend mode writes
// its addresses to stdout as one line of JSON (backend.Addrs) once it listens.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	if !IsChildMode(args) {
		return fmt.Errorf("running child: want %s, %s or %s first, got %q", ServeBackend, ServeGoProxy, ServeEventLoop, args)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	echo := fs.Int("echo", 0, "echo servers")
	sink := fs.Int("sink", 0, "sink servers")
	var routes []string
	fs.Func("route", "LISTEN=BACKEND[,BACKEND...]", func(s string) error {
		routes = append(routes, s)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("running child %s: %w", args[0], err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("running child %s: unexpected arguments %q", args[0], fs.Args())
	}
	if args[0] == ServeBackend {
		return backend.Run(ctx, *echo, *sink, func(a backend.Addrs) {
			_ = json.NewEncoder(stdout).Encode(a)
		})
	}
	if args[0] == ServeEventLoop {
		return serveProxies(ctx, "the event-loop proxy", routes, func(listen string, backends []string) (proxy, error) {
			return eventloop.Listen(listen, backends)
		})
	}
	return serveProxies(ctx, "the Go proxy", routes, func(listen string, backends []string) (proxy, error) {
		return goproxy.Listen(listen, backends)
	})
}

// proxy is what both Go proxies offer.
type proxy interface {
	Serve(ctx context.Context) error
	Close() error
}

func serveProxies(ctx context.Context, what string, routes []string, listen func(string, []string) (proxy, error)) error {
	if len(routes) == 0 {
		return fmt.Errorf("running %s: no -route", what)
	}
	var proxies []proxy
	for _, r := range routes {
		addr, backends, err := ParseRoute(r)
		var p proxy
		if err == nil {
			p, err = listen(addr, backends)
		}
		if err != nil {
			for _, p := range proxies {
				_ = p.Close()
			}
			return fmt.Errorf("running %s: %w", what, err)
		}
		proxies = append(proxies, p)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(proxies))
	for i, p := range proxies {
		wg.Go(func() { errs[i] = p.Serve(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ParseRoute splits a -route value "LISTEN=BACKEND[,BACKEND...]".
func ParseRoute(s string) (listen string, backends []string, err error) {
	listen, list, ok := strings.Cut(s, "=")
	if !ok || listen == "" || list == "" {
		return "", nil, fmt.Errorf("parsing route %q: want LISTEN=BACKEND[,BACKEND...]", s)
	}
	return listen, strings.Split(list, ","), nil
}

// SelfSpawner starts the benchmark binary at exe in a child mode.
func SelfSpawner(exe string) func(args ...string) *exec.Cmd {
	return func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }
}

// TestSpawner starts the running test binary in a child mode; its TestMain must
// call ExitIfChild first.
func TestSpawner() func(args ...string) *exec.Cmd {
	return func(args ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envArgs+"="+strings.Join(args, "\n"))
		return cmd
	}
}

// ExitIfChild runs the child mode a TestSpawner asked for, if any, and exits.
func ExitIfChild() {
	if v, ok := os.LookupEnv(envArgs); ok {
		os.Exit(Main(strings.Split(v, "\n")))
	}
}
