// Command balance-l4 is a layer-4 (TCP) load balancer with an admin API and a
// live dashboard. See the README and SPEC for the command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/app"
	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/demo"
	"github.com/balancel4/balance-l4/upgrade"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise
// it comes from the module and VCS information Go records in the binary.
var version = ""

// Exit codes (SPEC §1).
const (
	exitOK     = 0
	exitConfig = 1 // bad configuration, or a listener that cannot be opened
	exitUsage  = 2 // bad command line
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Signals are caught from the very start: SIGUSR2's default action ends
	// a process, and a new process still starting during an upgrade must
	// neither die of one sent to every process of a systemd unit nor be
	// killed outright by SIGTERM while it may hold connections.
	sigs, usr2 := make(chan os.Signal, 4), make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	defer signal.Stop(usr2)

	fs := flag.NewFlagSet("balance-l4", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "balance.toml", "configuration file `path`")
	check := fs.Bool("check", false, "validate the configuration, print the result and exit")
	demoMode := fs.Bool("demo", false, "run three demo backends, a service and the dashboard on loopback")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pidFile := fs.String("pidfile", "", "write the PID to `path` at start; a new process rewrites it after an upgrade (SIGUSR2)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: balance-l4 [-config PATH] [-check] [-demo] [-pidfile PATH] [-version]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "balance-l4: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}

	switch {
	case *showVersion:
		fmt.Fprintf(stdout, "balance-l4 %s\n", buildVersion())
		return exitOK
	case *demoMode && *check:
		fmt.Fprintln(stderr, "balance-l4: -demo and -check cannot be combined")
		return exitUsage
	}
	var d *demo.Demo
	if *demoMode {
		var err error
		if d, err = demo.Start(); err != nil {
			fmt.Fprintf(stderr, "balance-l4: starting demo: %v\n", err)
			return exitConfig
		}
		defer d.Stop()
		*configPath = d.ConfigPath
	}

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, os.ErrNotExist) {
			// A first run: say how to name a file, or how to try it without one.
			fmt.Fprintf(stderr, "balance-l4: no configuration file at %s: give one with -config PATH, or run balance-l4 -demo to try it without one\n", *configPath)
		}
		return exitConfig
	}
	if *check {
		fmt.Fprintln(stdout, "configuration OK")
		return exitOK
	}

	// During an upgrade two processes write to the same log: the PID tells them apart.
	// No log write blocks (nonBlocking); what the ring holds is written out last.
	color := useColor(stderr, os.Getenv)
	logOut, closeLog := nonBlocking(stderr, droppedLine(cfg.Log, color))
	defer closeLog()
	log := newLogger(cfg.Log, logOut, color).With().Int("pid", os.Getpid()).Logger()
	// The access log goes to its own file instead of stderr when one is set
	// (README "Logs"); every reload reopens it, for logrotate.
	var accessLog *zerolog.Logger
	var reopenLogs func() error
	if cfg.Log.AccessLogFile != "" {
		f, err := openLogFile(cfg.Log.AccessLogFile)
		if err != nil {
			fmt.Fprintf(stderr, "balance-l4: %v\n", err)
			return exitConfig
		}
		defer f.Close()
		accessOut, closeAccess := nonBlocking(f, droppedLine(cfg.Log, false))
		defer closeAccess() // before f.Close
		l := newAccessLogger(cfg.Log, accessOut).With().Int("pid", os.Getpid()).Logger()
		accessLog, reopenLogs = &l, f.Reopen
	}
	handover, err := upgrade.Inherit()
	if err != nil {
		log.Warn().Err(err).Msg("starting without a hand-over")
	}
	start := log.Info().Str("version", buildVersion()).Str("config", *configPath)
	if handover != nil {
		start = start.Int("old_pid", handover.Parent)
	}
	start.Msg("starting balance-l4")
	a, err := app.Start(app.Options{ConfigPath: *configPath, Config: cfg, Log: log, AccessLog: accessLog, ReopenLogs: reopenLogs,
		Version: buildVersion(), Handover: handover})
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitConfig
	}
	up := newUpgrader(a, log, args, *pidFile, d != nil, usr2)
	if handover != nil {
		if !up.ready(handover, cfg) {
			shutdownNow(a, log)
			return exitConfig
		}
	} else if !up.started() {
		shutdownNow(a, log)
		return exitConfig
	}
	if d != nil {
		d.StartTraffic()
		printDemoHelp(stdout, d, a.AdminAddr())
	}
	beforeShutdown := func() {}
	if d != nil {
		beforeShutdown = d.StopTraffic // its clients would hold the shutdown up
	}
	serve(a, log, sigs, usr2, up, beforeShutdown)
	return exitOK
}

// serve handles signals until a shutdown signal or a finished upgrade:
// SIGHUP reloads; SIGUSR2 upgrades (upgrade.go); SIGINT or SIGTERM stop
// accepting at once and wait for connections up to shutdown_timeout; a
// second SIGINT/SIGTERM closes them at once.
func serve(a *app.App, log zerolog.Logger, sigs, usr2 chan os.Signal, up *upgrader, beforeShutdown func()) {
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-usr2:
			up.begin()
			continue
		case child := <-up.result:
			if child != nil {
				up.handOver(child, sigs, usr2)
				return
			}
			continue // failed and logged: serving as before
		}
		if sig == syscall.SIGHUP {
			a.Reload("SIGHUP") // reopens the access log file and logs its own outcome
			continue
		}
		up.cancel() // an upgrade under way: its new process is stopped
		beforeShutdown()
		timeout := a.Config().ShutdownTimeout
		log.Info().Str("signal", sig.String()).Dur("shutdown_timeout_ms", timeout).Msg("shutting down: no longer accepting; waiting for connections")
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			for s := range sigs {
				if s == syscall.SIGINT || s == syscall.SIGTERM {
					log.Warn().Str("signal", s.String()).Msg("second signal: closing connections now")
					cancel()
					return
				}
			}
		}()
		if err := a.Shutdown(ctx); err != nil {
			log.Error().Err(err).Msg("shutdown")
		}
		cancel()
		up.wait() // a new process being stopped is gone before this one
		up.removePIDFile()
		log.Info().Msg("stopped")
		return
	}
}

// shutdownNow stops a process that could not finish starting.
func shutdownNow(a *app.App, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), a.Config().ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

func printDemoHelp(w io.Writer, d *demo.Demo, adminAddr string) {
	fmt.Fprintf(w, `
balance-l4 demo is running.

  Dashboard:  http://%s/
  Service:    %s  (three backends: %s, %s, %s)
  Try:        nc %s
              curl -s http://%s/api/v1/services/demo | head -40
              curl -s -X POST http://%s/api/v1/services/demo/backends/demo-1/drain
  Config:     %s  (edit it, then: kill -HUP %d)

demo-3 falls sick for 20 s of every minute, so you can watch it leave and rejoin.
Press Ctrl-C to stop.
`, adminAddr, d.ServiceAddr, d.Backends[0].Addr(), d.Backends[1].Addr(), d.Backends[2].Addr(),
		strings.Replace(d.ServiceAddr, ":", " ", 1), adminAddr, adminAddr, d.ConfigPath, os.Getpid())
}
