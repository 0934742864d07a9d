// Package app wires a running balance-l4: the data path (l4), the admin server,
// configuration reloads and the operator state file. It is the only place that
// knows all of them; cmd parses flags and signals and calls it.
//
// Typical use:
//
//	a, err := app.Start(app.Options{ConfigPath: path, Config: cfg, Log: log})
//	...
//	a.Reload("SIGHUP")
//	a.Shutdown(ctx)
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/admin"
	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/discovery"
	"github.com/balancel4/balance-l4/fleet"
	"github.com/balancel4/balance-l4/l4"
	"github.com/balancel4/balance-l4/status"
	"github.com/balancel4/balance-l4/upgrade"
)

// Options configure Start.
type Options struct {
	ConfigPath string         // re-read on every reload
	Config     *config.Config // the configuration already loaded from ConfigPath
	Log        zerolog.Logger
	Version    string

	// AccessLog, when set, writes the access log instead of Log (the
	// access_log_file's logger); ReopenLogs reopens that file. Every
	// reload calls it first, also one that is then rejected, so
	// logrotate's `kill -HUP` works whatever the file now holds.
	AccessLog  *zerolog.Logger
	ReopenLogs func() error

	// Handover holds the listeners an old process handed over when this
	// one was started by an upgrade (SPEC §8); nil on a plain start. Every
	// listener, the services' and the admin server's, is taken from it when
	// it has one of that address, and opened otherwise.
	Handover *upgrade.Handover
}

// App is a running balance-l4. It implements admin.Controller: the runtime's
// reads and actions, plus Reload.
type App struct {
	*l4.Runtime

	path       string
	log        zerolog.Logger
	admin      *admin.Server
	reopenLogs func() error // nil: no log file of its own

	reloadMu sync.Mutex // one reload at a time
	mu       sync.Mutex // guards cfg; also serialises state file writes
	cfg      *config.Config

	version string
	digest  atomic.Value // string: the configuration file's digest
	fleet   *fleet.Fleet // nil outside a fleet
	opMu    sync.Mutex   // serialises applying the fleet's state
	// fleetPIDID: the fleet instance id was made from the PID, so a new
	// process after an upgrade has another one (upgrade.go).
	fleetPIDID bool

	upgradeState // listeners to hand over, and the gate on changes during an upgrade

	discMu    sync.Mutex
	discovery map[string]map[string]*discovery.Watcher // service -> source key -> watcher
	restored  []l4.OperatorBackend                     // the state file's, for backends not found yet
}

var _ admin.Controller = (*App)(nil)

// Start applies the configuration, restores the operator state and starts the
// admin server. An error names what could not be started.
func Start(o Options) (*App, error) {
	a := &App{
		path:       o.ConfigPath,
		log:        o.Log,
		cfg:        o.Config,
		version:    o.Version,
		reopenLogs: o.ReopenLogs,
	}
	a.handover = o.Handover
	a.Runtime = l4.NewRuntime(l4.Options{Log: o.Log, AccessLog: o.AccessLog, Listen: a.listenFunc("service", l4.Listen)})
	a.digest.Store(configDigest(o.Config))
	// The admin listener first: a port in use stops the start before the
	// fleet is joined or any service listens.
	adminLn, err := a.openAdminListener(o.Config.Admin.Listen)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started && adminLn != nil {
			adminLn.Close()
		}
	}()
	// Restore drain flags and weights before the first connection can arrive, so a
	// drained backend never takes traffic after a restart.
	var saved stateFile
	if o.Config.StateFile != "" {
		st, found, err := loadState(o.Config.StateFile)
		switch {
		case err != nil:
			a.log.Error().Err(err).Msg("ignoring state file")
		case found:
			saved = st
		}
	}
	if o.Config.Fleet.Enabled() {
		// In a fleet the fleet's state (or its last copy in the state file)
		// is what the backends start with.
		if saved.Fleet == nil && len(saved.State.Backends) > 0 {
			a.log.Warn().Int("backends", len(saved.State.Backends)).
				Msg("state file has drains and weights from before this instance joined the fleet; the fleet's state replaces them")
		}
		if saved.Fleet != nil && saved.Fleet.Name != o.Config.Fleet.Name {
			a.log.Warn().Str("saved", saved.Fleet.Name).Msg("state file holds another fleet's state; ignoring it")
			saved.Fleet = nil
		}
		wants, err := a.startFleet(o.Config, saved.Fleet)
		if err != nil {
			return nil, fmt.Errorf("joining fleet: %w", err)
		}
		saved.State = wants
	}
	a.restored = saved.State.Backends
	if len(saved.State.Backends) > 0 {
		a.Runtime.RestoreOperatorState(saved.State)
		a.log.Info().Str("path", o.Config.StateFile).Int("backends", len(saved.State.Backends)).Msg("restored operator state")
	}
	if _, err := a.Runtime.Apply(o.Config); err != nil {
		a.closeFleet()
		return nil, err
	}
	a.Runtime.OnOperatorChange(a.saveState)
	if a.fleet != nil {
		a.applyFleet(nil, true) // what changed while the listeners opened
	}
	a.syncDiscovery(o.Config)

	if o.Config.Admin.Listen != "" {
		cert, err := adminCertificate(o.Config.Admin)
		var srv *admin.Server
		if err == nil {
			srv, err = admin.New(admin.Options{
				Listen:      o.Config.Admin.Listen,
				ListenFunc:  func(string, string) (net.Listener, error) { return adminLn, nil },
				Version:     o.Version,
				Token:       o.Config.Admin.Token,
				ReadToken:   o.Config.Admin.ReadToken,
				Certificate: cert,
				Log:         o.Log,
				Controller:  a,
			})
		}
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			a.Runtime.Shutdown(closedContext())
			a.closeFleet()
			return nil, fmt.Errorf("starting admin server: %w", err)
		}
		a.admin = srv
		warnAdminExposure(o.Config.Admin, a.log)
	}
	started = true
	return a, nil
}

// AdminAddr is the admin server's address, or nil when it is disabled.
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr().String()
}

// Config returns the configuration in force.
func (a *App) Config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Reload re-reads the configuration file. On any error nothing changes and
// the error, which wraps status.ErrInvalid, lists every problem. The access
// log file is reopened first, whatever the outcome.
func (a *App) Reload(by string) (status.Reload, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.ReopenLogs(by)
	log := a.log.With().Str("by", by).Str("path", a.path).Logger()
	if err := a.changesRefused(); err != nil {
		log.Warn().Err(err).Msg("reload refused")
		return status.Reload{}, err
	}
	cfg, err := config.Load(a.path)
	if err != nil {
		log.Error().Err(err).Msg("reload rejected: configuration has errors; running configuration unchanged")
		return status.Reload{}, invalidError{err}
	}
	old := a.Config()
	cert, err := a.reloadCertificate(cfg.Admin)
	if err != nil {
		log.Error().Err(err).Msg("reload rejected: the admin certificate cannot be loaded; running configuration unchanged")
		return status.Reload{}, invalidError{err}
	}
	rl, err := a.Runtime.Apply(cfg)
	if err != nil {
		log.Error().Err(err).Msg("reload rejected; running configuration unchanged")
		return status.Reload{}, invalidError{err}
	}
	if note := a.swapCertificate(cert, log); note != "" {
		rl.Summary = joinSummary(rl.Summary, note)
	}
	if adminNeedsRestart(old.Admin, cfg.Admin) {
		note := "admin settings changed; they take effect at the next restart (a new certificate does not wait)"
		log.Warn().Msg(note)
		rl.Summary = joinSummary(rl.Summary, note)
	}
	if old.Log != cfg.Log {
		note := "log settings changed; they take effect at the next restart"
		log.Warn().Msg(note)
		rl.Summary = joinSummary(rl.Summary, note)
	}
	if !reflect.DeepEqual(old.Fleet, cfg.Fleet) {
		note := "fleet settings changed; they take effect at the next restart"
		log.Warn().Msg(note)
		rl.Summary = joinSummary(rl.Summary, note)
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	a.digest.Store(configDigest(cfg))
	a.syncDiscovery(cfg)
	if a.fleet != nil {
		a.applyFleet(nil, true) // added backends take the fleet's state
		a.fleet.Publish()
	}
	a.saveState() // drops removed backends; writes to a new state_file path
	log.Info().Strs("services_added", rl.ServicesAdded).Strs("services_removed", rl.ServicesRemoved).
		Strs("backends_added", rl.BackendsAdded).Strs("backends_removed", rl.BackendsRemoved).
		Strs("backends_changed", rl.BackendsChanged).Msg("configuration reloaded")
	return rl, nil
}

// ReopenLogs reopens the access log file, when there is one, so that
// lines go to a new file at its path after logrotate renamed the old one.
// When it cannot be opened, lines keep going to the old one.
func (a *App) ReopenLogs(by string) {
	if a.reopenLogs == nil {
		return
	}
	if err := a.reopenLogs(); err != nil {
		a.log.Error().Err(err).Str("by", by).Msg("access log file not reopened: still writing to the file open before")
		return
	}
	a.log.Info().Str("by", by).Msg("access log file reopened")
}

func joinSummary(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// saveState writes the operator state when a state file is configured. It is
// called after every drain, undrain and weight change, outside the runtime's locks.
func (a *App) saveState() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.StateFile == "" || !a.ownsState() {
		return
	}
	f := stateFile{State: a.Runtime.OperatorState()}
	if a.fleet != nil {
		saved := a.fleet.Save()
		f.Fleet = &saved
	}
	if err := saveState(a.cfg.StateFile, f); err != nil {
		a.log.Error().Err(err).Msg("operator state not saved")
	}
}

// Shutdown stops the admin server and accepting at once, lets established
// connections finish until ctx is done, then closes the rest.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.admin != nil {
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := a.admin.Shutdown(actx); err != nil {
			errs = append(errs, fmt.Errorf("stopping admin server: %w", err))
		}
		cancel()
	}
	a.stopDiscovery()
	a.closeFleet()
	forced, err := a.Runtime.Shutdown(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	if forced > 0 {
		a.log.Warn().Int("connections", forced).Msg("shutdown timeout reached; closed remaining connections")
	}
	return errors.Join(errs...)
}

// closeFleet leaves the fleet, if the instance is in one: its registry entry
// goes at once, unless the process handed over to a new one with the same
// instance id, which owns the entry now. Operator state stays in etcd.
func (a *App) closeFleet() {
	a.fleetOnce.Do(func() {
		switch {
		case a.fleet == nil:
		case a.handedOver.Load() && !a.fleetPIDID:
			a.fleet.Detach()
		default:
			a.fleet.Close()
		}
	})
}

// invalidError marks a reload the operator must fix: the admin API answers 400.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{status.ErrInvalid, e.err} }

func closedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
