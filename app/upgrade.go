package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/balancel4/balance-l4/status"
	"github.com/balancel4/balance-l4/upgrade"
)

// An upgrade (SPEC §8), as the application sees it:
//
//   - BeginUpgrade, on SIGUSR2: from here until the upgrade ends this process
//     refuses operator changes (drain, undrain, weight, reload) with 503 and
//     stops writing the state file, so the state the new process restores at
//     its start is the last one, and nothing changed here afterwards is lost
//     with this process. (Changes the fleet makes through etcd are still
//     applied: the new process reads them from etcd too.) It returns the
//     listeners to hand over: those open now.
//   - If the new process fails, AbortUpgrade: everything is as before, and the
//     state file and the registry entry are written again.
//   - If it is ready, HandOver: stop accepting, never write the state file
//     again, leave the fleet without removing the registry entry (the new
//     process, with the same instance id, wrote its own over it), release the
//     new process, and let established connections finish.
//
// Meanwhile the admin listener is shared: each new admin connection goes to
// whichever process accepts it. The new process answers everything from the
// start of its admin server, after it restored the state; the old one answers
// reads, and 503 "upgrade in progress" to changes. A drain sent during the
// hand-over is therefore applied by the new process or refused, never applied
// by the old one only and lost.
type upgradeState struct {
	handover *upgrade.Handover // what this process inherited, if anything

	lnMu sync.Mutex
	lns  []namedListener // every listener opened, closed ones pruned

	gate       sync.RWMutex // operator changes hold it shared; BeginUpgrade takes it
	upgrading  atomic.Bool
	handedOver atomic.Bool
	fleetOnce  sync.Once
}

type namedListener struct {
	name string // "service tcp 127.0.0.1:6432", "admin tcp 127.0.0.1:9090"
	ln   net.Listener
}

// errUpgrading refuses operator changes and reloads during an upgrade.
var errUpgrading = fmt.Errorf("an upgrade is in progress: changes are not taken until it ends; try again in a moment: %w", status.ErrUnavailable)

// errHandedOver refuses them in an old process that handed over.
var errHandedOver = fmt.Errorf("this process handed over to a new one after an upgrade and is only finishing its connections: %w", status.ErrUnavailable)

// listenFunc opens listeners of a kind ("service", "admin"): the one the old
// process handed over for that address if there is one, else a new one with
// open. Every listener is remembered, to be handed over in turn.
func (a *App) listenFunc(kind string, open func(network, addr string) (net.Listener, error)) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) {
		name := kind + " " + network + " " + addr
		var ln net.Listener
		if a.handover != nil {
			var err error
			if ln, err = a.handover.Listener(name); err != nil {
				return nil, err
			}
			if ln != nil {
				a.log.Info().Str("listener", name).Int("from_pid", a.handover.Parent).Msg("took over a listening socket from the old process")
			}
		}
		if ln == nil {
			var err error
			if ln, err = open(network, addr); err != nil {
				return nil, err
			}
		}
		a.lnMu.Lock()
		a.lns = append(openListeners(a.lns), namedListener{name: name, ln: ln})
		a.lnMu.Unlock()
		return ln, nil
	}
}

// openListeners keeps the listeners not closed since (by a reload, say).
func openListeners(lns []namedListener) []namedListener {
	kept := lns[:0]
	for _, l := range lns {
		if isOpen(l.ln) {
			kept = append(kept, l)
		}
	}
	clear(lns[len(kept):])
	return kept
}

func isOpen(ln net.Listener) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	return err == nil && raw.Control(func(uintptr) {}) == nil
}

// beginChange lets an operator change through unless an upgrade runs or ran;
// call done when the change, and its state file write, are over.
func (a *App) beginChange() (done func(), err error) {
	a.gate.RLock()
	if err := a.changesRefused(); err != nil {
		a.gate.RUnlock()
		return nil, err
	}
	return a.gate.RUnlock, nil
}

func (a *App) changesRefused() error {
	switch {
	case a.handedOver.Load():
		return errHandedOver
	case a.upgrading.Load():
		return errUpgrading
	}
	return nil
}

// ownsState reports whether this process may write the state file.
func (a *App) ownsState() bool { return !a.upgrading.Load() && !a.handedOver.Load() }

// BeginUpgrade starts an upgrade: it waits for operator changes in flight
// (and their state file writes) to end, then refuses new ones and stops
// writing the state file. It returns the listeners to hand over, or an
// error when an upgrade runs already or this process handed over.
func (a *App) BeginUpgrade() ([]upgrade.Listener, error) {
	a.reloadMu.Lock() // no reload between here and the listeners' list
	defer a.reloadMu.Unlock()
	a.gate.Lock()
	defer a.gate.Unlock()
	if a.handedOver.Load() {
		return nil, errors.New("this process already handed over to a new one")
	}
	if !a.upgrading.CompareAndSwap(false, true) {
		return nil, errors.New("an upgrade is already in progress")
	}
	a.lnMu.Lock()
	defer a.lnMu.Unlock()
	a.lns = openListeners(a.lns)
	out := make([]upgrade.Listener, 0, len(a.lns))
	for _, l := range a.lns {
		out = append(out, upgrade.Listener{Name: l.name, Conn: l.ln.(syscall.Conn)})
	}
	return out, nil
}

// AbortUpgrade ends a failed upgrade: changes are taken again, the state file
// is written (the fleet may have changed meanwhile) and so is the registry
// entry (the failed process may have written over it).
func (a *App) AbortUpgrade() {
	a.upgrading.Store(false)
	a.saveState()
	if a.fleet != nil {
		a.fleet.Publish()
	}
}

// HandOver ends a successful upgrade in the old process: it stops accepting
// (services and admin server) at once, stops writing the state file for
// good, leaves the fleet without removing the registry entry, calls release
// (the new process then owns both), and lets established connections finish
// until ctx ends; then it closes what remains.
func (a *App) HandOver(ctx context.Context, release func()) error {
	a.handedOver.Store(true)
	a.upgrading.Store(false)
	type result struct {
		forced int
		err    error
	}
	stopped := make(chan result, 1)
	go func() { // closes the listeners first thing
		forced, err := a.Runtime.Shutdown(ctx)
		stopped <- result{forced, err}
	}()
	var errs []error
	adminDone := make(chan error, 1)
	go func() {
		if a.admin == nil {
			adminDone <- nil
			return
		}
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		adminDone <- a.admin.Shutdown(actx)
	}()
	a.closeFleet()
	release()
	if err := <-adminDone; err != nil {
		errs = append(errs, fmt.Errorf("stopping admin server: %w", err))
	}
	r := <-stopped
	if r.err != nil && !errors.Is(r.err, context.DeadlineExceeded) && !errors.Is(r.err, context.Canceled) {
		errs = append(errs, r.err)
	}
	if r.forced > 0 {
		a.log.Warn().Int("connections", r.forced).Msg("shutdown timeout reached; closed remaining connections")
	}
	return errors.Join(errs...)
}

// WaitRegistered waits up to d for this instance's fleet registry entry to
// be written, and reports whether it was; outside a fleet it is at once.
func (a *App) WaitRegistered(d time.Duration) bool {
	if a.fleet == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.fleet.Registered():
		return true
	case <-t.C:
		return false
	}
}

// TookOver is called in a new process once the old one let go: the state
// file and the registry entry are written from this process now.
func (a *App) TookOver() {
	a.saveState()
	if a.fleet != nil {
		a.fleet.Publish()
	}
}

// HandedOver reports whether this process handed over to a new one.
func (a *App) HandedOver() bool { return a.handedOver.Load() }
