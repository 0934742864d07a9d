package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/app"
	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/upgrade"
)

// Upgrading in place (SPEC §8): SIGUSR2 starts the binary at this process's
// own path with the same arguments and hands it every listener; once it is
// ready this process stops accepting, lets its connections finish and exits
// 0. A new process that fails to start, exits or is not ready in time is
// stopped, and this one goes on as before.

// defaultUpgradeTimeout is how long a new process has to be ready;
// BALANCE_UPGRADE_TIMEOUT (a Go duration) changes it.
const defaultUpgradeTimeout = 30 * time.Second

// upgrader runs upgrades for the serve loop, one at a time.
type upgrader struct {
	a       *app.App
	log     zerolog.Logger
	path    string // the binary to start: this process's own path
	pathErr error
	args    []string
	pidFile string // absolute, or ""
	demo    bool
	timeout time.Duration

	result chan *upgrade.Child // a ready new process, or nil: the upgrade failed
	usr2   chan os.Signal

	mu      sync.Mutex
	taking  bool // a new process that the old one has not released yet
	running bool
	pid     int                // the new process's, once started
	stop    context.CancelFunc // ends the running upgrade
	done    chan struct{}      // closed when the running upgrade's goroutine ends
}

func newUpgrader(a *app.App, log zerolog.Logger, args []string, pidFile string, demo bool, usr2 chan os.Signal) *upgrader {
	u := &upgrader{a: a, log: log, args: args, demo: demo, timeout: defaultUpgradeTimeout,
		result: make(chan *upgrade.Child, 1), usr2: usr2}
	u.path, u.pathErr = selfPath()
	if pidFile != "" {
		if abs, err := filepath.Abs(pidFile); err == nil {
			pidFile = abs
		}
	}
	u.pidFile = pidFile
	if v := os.Getenv("BALANCE_UPGRADE_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			u.timeout = d
		} else {
			log.Warn().Str("BALANCE_UPGRADE_TIMEOUT", v).Dur("using_ms", u.timeout).Msg("not a positive duration; ignored")
		}
	}
	return u
}

// selfPath is the path this process was started as (argv[0]), made absolute:
// the file an operator replaces to upgrade. Not /proc/self/exe, which
// follows symbolic links: a link switched to a new release must be followed
// at the upgrade, not at the start.
func selfPath() (string, error) {
	p := os.Args[0]
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("finding this binary's path: %w", err)
		}
		p = lp
	}
	return filepath.Abs(p)
}

// started finishes a plain start: the PID file and systemd's READY=1.
func (u *upgrader) started() bool {
	if u.pidFile != "" {
		if err := upgrade.WritePIDFile(u.pidFile, os.Getpid()); err != nil {
			u.log.Error().Err(err).Msg("cannot start")
			return false
		}
	}
	u.notify("READY=1")
	return true
}

// ready finishes the start of a new process in an upgrade: in a fleet it
// waits (a bounded time) for its registry entry, then tells the old process
// it is ready. Once the old one lets go, the state file and registry entry
// are written from here, and the PID file and systemd's MAINPID name this
// process. False means the old process gave up on it.
func (u *upgrader) ready(h *upgrade.Handover, cfg *config.Config) bool {
	if cfg.Fleet.Enabled() {
		wait := cfg.Fleet.DialTimeout + cfg.Fleet.RequestTimeout
		if !u.a.WaitRegistered(wait) {
			u.log.Warn().Dur("waited_ms", wait).Msg("upgrade: fleet registry entry not written yet (etcd unreachable?); it is taken over as soon as etcd answers")
		}
	}
	u.mu.Lock()
	u.taking = true
	u.mu.Unlock()
	if err := h.Ready(); err != nil {
		u.log.Error().Err(err).Msg("upgrade: the old process gave up on this one; stopping")
		return false
	}
	u.log.Info().Int("old_pid", h.Parent).Msg("upgrade: ready; the old process stops accepting and finishes its connections")
	go func() {
		<-h.Released()
		// A SIGUSR2 that came while taking over was for the upgrade that
		// started this process (systemctl kill reaches every process).
		for drained := false; !drained; {
			select {
			case <-u.usr2:
			default:
				drained = true
			}
		}
		u.mu.Lock()
		u.taking = false
		u.mu.Unlock()
		u.a.TookOver()
		if u.pidFile != "" {
			if err := upgrade.WritePIDFile(u.pidFile, os.Getpid()); err != nil {
				u.log.Error().Err(err).Msg("upgrade: PID file not rewritten")
			}
		}
		u.notify(fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid()))
		u.log.Info().Int("old_pid", h.Parent).Msg("upgrade: took over; this process is the only one now")
	}()
	return true
}

func (u *upgrader) notify(state string) {
	if _, err := upgrade.Notify(state); err != nil {
		u.log.Warn().Err(err).Msg("telling systemd")
	}
}

// begin starts an upgrade in the background (SIGUSR2); the serve loop gets
// its outcome from result. A SIGUSR2 during one is logged and ignored.
func (u *upgrader) begin() {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.demo:
		u.log.Warn().Msg("upgrade: SIGUSR2 ignored: -demo cannot be upgraded in place")
		return
	case u.taking:
		// A SIGUSR2 sent to every process of the unit during an upgrade
		// reaches this one too; it is for the upgrade under way.
		u.log.Warn().Msg("upgrade: SIGUSR2 ignored: this process is still taking over from the old one")
		return
	case u.running:
		e := u.log.Warn()
		if u.pid != 0 {
			e = e.Int("new_pid", u.pid)
		}
		e.Msg("upgrade: SIGUSR2 ignored: an upgrade is already in progress")
		return
	case u.pathErr != nil:
		u.log.Error().Err(u.pathErr).Msg("upgrade failed: still serving with this process")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.running, u.pid, u.stop, u.done = true, 0, cancel, make(chan struct{})
	go u.run(ctx, u.done)
}

// run is one upgrade. On failure the new process, if any, is stopped, and
// this process takes changes again.
func (u *upgrader) run(ctx context.Context, done chan struct{}) {
	var child *upgrade.Child
	defer func() {
		u.mu.Lock()
		u.running = false
		u.mu.Unlock()
		close(done)
		u.result <- child
	}()
	lns, err := u.a.BeginUpgrade()
	if err != nil {
		u.log.Warn().Err(err).Msg("upgrade: SIGUSR2 ignored")
		return
	}
	u.log.Info().Str("binary", u.path).Strs("args", u.args).Int("listeners", len(lns)).Dur("timeout_ms", u.timeout).
		Msg("upgrade: starting the new binary (SIGUSR2)")
	c, err := upgrade.Start(upgrade.Options{Path: u.path, Args: u.args, Listeners: lns})
	if err != nil {
		u.a.AbortUpgrade()
		u.log.Error().Err(err).Msg("upgrade failed: the new binary could not be started; still serving with this process")
		return
	}
	u.mu.Lock()
	u.pid = c.Pid
	u.mu.Unlock()
	if err := c.WaitReady(ctx, u.timeout); err != nil {
		why := "upgrade failed"
		if ctx.Err() != nil {
			why = "upgrade cancelled: shutting down"
		}
		u.log.Error().Err(err).Int("new_pid", c.Pid).Msg(why + ": stopping the new process; still serving with this process")
		// The new process may have accepted connections: SIGTERM lets it
		// finish them.
		c.Stop(u.a.Config().ShutdownTimeout + 5*time.Second)
		u.log.Info().Int("new_pid", c.Pid).Str("status", c.ExitStatus()).Msg("upgrade: the failed new process is gone")
		u.a.AbortUpgrade()
		return
	}
	child = c
}

// cancel ends an upgrade under way (a shutdown signal); wait waits for it.
func (u *upgrader) cancel() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.running {
		u.stop()
	}
}

func (u *upgrader) wait() {
	u.mu.Lock()
	done := u.done
	u.mu.Unlock()
	if done != nil {
		<-done
	}
}

// handOver ends this process after a successful upgrade: it stops
// accepting, releases the new process, lets established connections finish
// up to shutdown_timeout and returns (the process exits 0). The PID file is
// the new process's now and is left alone.
func (u *upgrader) handOver(child *upgrade.Child, sigs, usr2 chan os.Signal) {
	timeout := u.a.Config().ShutdownTimeout
	u.log.Info().Int("new_pid", child.Pid).Dur("shutdown_timeout_ms", timeout).
		Msg("upgrade: the new process is ready; handing over: no longer accepting, waiting for connections")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		for range usr2 {
			u.log.Info().Int("new_pid", child.Pid).Msg("upgrade: SIGUSR2 ignored: this process handed over to a new one")
		}
	}()
	go func() {
		stops := 0
		for s := range sigs {
			switch s {
			case syscall.SIGINT, syscall.SIGTERM:
				if stops++; stops == 1 {
					u.log.Info().Str("signal", s.String()).Msg("already finishing connections after an upgrade; a second signal closes them now")
					continue
				}
				u.log.Warn().Str("signal", s.String()).Msg("second signal: closing connections now")
				cancel()
				return
			case syscall.SIGHUP:
				// The configuration is the new process's; the access log
				// file this one still writes to is reopened (logrotate).
				u.a.ReopenLogs("SIGHUP")
				u.log.Info().Str("signal", s.String()).Int("new_pid", child.Pid).Msg("handed over to the new process; no reload here")
			default:
				u.log.Info().Str("signal", s.String()).Int("new_pid", child.Pid).Msg("handed over to the new process; signal ignored")
			}
		}
	}()
	if err := u.a.HandOver(ctx, child.Release); err != nil {
		u.log.Error().Err(err).Msg("shutdown")
	}
	u.log.Info().Int("new_pid", child.Pid).Msg("upgrade complete: the old process stopped")
}

// removePIDFile removes the PID file at a plain shutdown, if it is still
// this process's.
func (u *upgrader) removePIDFile() {
	if u.pidFile == "" {
		return
	}
	if err := upgrade.RemovePIDFile(u.pidFile, os.Getpid()); err != nil {
		u.log.Warn().Err(err).Msg("PID file not removed")
	}
}
