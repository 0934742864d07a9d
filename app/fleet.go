package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/balancel4/balance-l4/admin"
	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/fleet"
	"github.com/balancel4/balance-l4/l4"
	"github.com/balancel4/balance-l4/status"
)

var _ admin.FleetController = (*App)(nil)

// startFleet joins the fleet before the first listener opens: it waits a
// bounded time for the fleet's state, so a restarted instance never sends a
// connection to a backend the fleet drained. When etcd does not answer it
// starts with the state file's copy and keeps trying in the background.
func (a *App) startFleet(cfg *config.Config, saved *fleet.Saved) (l4.OperatorState, error) {
	fc := cfg.Fleet
	id := fc.Instance
	if id == "" {
		id = defaultInstanceID(cfg.Admin.Listen)
		a.fleetPIDID = cfg.Admin.Listen == ""
	}
	f, err := fleet.New(fleet.Options{
		Config: fc, ID: id, Admin: advertise(fc.Advertise, cfg.Admin), Version: a.version,
		Log: a.log, Saved: saved,
		Hooks: fleet.Hooks{Changed: a.applyFleet, Report: a.report, Members: a.membersChanged},
	})
	if err != nil {
		return l4.OperatorState{}, err
	}
	a.fleet = f
	f.Start()
	wait := fc.DialTimeout + fc.RequestTimeout
	select {
	case <-f.Synced():
	case <-time.After(wait):
		a.log.Warn().Dur("waited_ms", wait).Bool("state_file", saved != nil).
			Msg("fleet state not read from etcd yet: starting with the state file's copy; it is applied as soon as etcd answers")
	}
	return a.fleetWants(cfg), nil
}

// fleetWants is what the fleet asks of every configured backend, in the
// form the runtime restores before its first connection.
func (a *App) fleetWants(cfg *config.Config) l4.OperatorState {
	st := l4.OperatorState{}
	for _, s := range cfg.Services {
		for _, b := range s.Backends {
			op, _ := a.fleet.Want(fleet.Key{Service: s.Name, Backend: b.Name})
			if op.Drain || op.Weight != nil {
				st.Backends = append(st.Backends, l4.OperatorBackend{Service: s.Name, Backend: b.Name,
					Address: b.Address, Drained: op.Drain, Weight: op.Weight})
			}
		}
	}
	return st
}

// applyFleet makes the runtime do what the fleet asks of keys (of every
// backend when all is set). Calls are serialised, so the last one applies
// the newest wish.
func (a *App) applyFleet(keys []fleet.Key, all bool) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	if all {
		keys = keys[:0:0]
		for _, s := range a.Runtime.Services() {
			for _, b := range s.Backends {
				keys = append(keys, fleet.Key{Service: s.Name, Backend: b.Name})
			}
		}
	}
	for _, k := range keys {
		op, local := a.fleet.Want(k)
		reason := "fleet"
		switch {
		case local:
			reason = "set on this instance only by " + op.By
		case op.By != "":
			reason = "fleet: " + op.By
		}
		if _, err := a.Runtime.SetOperator(k.Service, k.Backend, op.Drain, op.Weight, reason); err != nil {
			// A key for a service or backend this instance does not have.
			continue
		}
	}
	a.saveState()
}

// report is this instance's entry in the registry.
func (a *App) report() fleet.Report {
	r := fleet.Report{ConfigDigest: a.digest.Load().(string)}
	for _, s := range a.Runtime.Services() {
		for _, b := range s.Backends {
			r.Backends = append(r.Backends, status.InstanceBackend{Service: s.Name, Backend: b.Name,
				State: b.State, ActiveConnections: b.ActiveConnections})
		}
	}
	return r
}

// Fleet is the fleet view for GET /api/v1/fleet.
func (a *App) Fleet() (status.Fleet, bool) {
	if a.fleet == nil {
		return status.Fleet{}, false
	}
	return a.fleet.View(), true
}

// operatorChange writes a change to the fleet, or applies it here when the
// instance is not part of one.
func (a *App) operatorChange(service, backend, by string, change func(*fleet.Operator), local func() (status.Backend, error)) (status.Backend, error) {
	done, err := a.beginChange()
	if err != nil {
		return status.Backend{}, err
	}
	defer done()
	if a.fleet == nil {
		return local()
	}
	if _, err := a.Runtime.Backend(service, backend); err != nil {
		return status.Backend{}, err
	}
	by = by + " on " + a.fleet.ID()
	if err := a.fleet.Update(context.Background(), fleet.Key{Service: service, Backend: backend}, by, change); err != nil {
		return status.Backend{}, err
	}
	return a.Backend(service, backend)
}

// Drain, Undrain and SetWeight act on the whole fleet when there is one.
func (a *App) Drain(service, backend, by string) (status.Backend, error) {
	return a.operatorChange(service, backend, by, func(o *fleet.Operator) { o.Drain = true },
		func() (status.Backend, error) { return a.Runtime.Drain(service, backend, by) })
}

func (a *App) Undrain(service, backend, by string) (status.Backend, error) {
	return a.operatorChange(service, backend, by, func(o *fleet.Operator) { o.Drain = false },
		func() (status.Backend, error) { return a.Runtime.Undrain(service, backend, by) })
}

func (a *App) SetWeight(service, backend string, weight int, by string) (status.Backend, error) {
	if weight < 0 || weight > l4.MaxWeight {
		return status.Backend{}, fmt.Errorf("weight %d outside 0..%d: %w", weight, l4.MaxWeight, status.ErrInvalid)
	}
	return a.operatorChange(service, backend, by, func(o *fleet.Operator) { o.Weight = &weight },
		func() (status.Backend, error) { return a.Runtime.SetWeight(service, backend, weight, by) })
}

// localChange applies a change to this instance alone (scope=local).
func (a *App) localChange(service, backend, by string, change func(*fleet.Operator), plain func() (status.Backend, error)) (status.Backend, error) {
	done, err := a.beginChange()
	if err != nil {
		return status.Backend{}, err
	}
	defer done()
	if a.fleet == nil {
		return plain()
	}
	if _, err := a.Runtime.Backend(service, backend); err != nil {
		return status.Backend{}, err
	}
	a.fleet.SetLocal(fleet.Key{Service: service, Backend: backend}, by+" on "+a.fleet.ID(), change)
	return a.Backend(service, backend)
}

func (a *App) DrainLocal(service, backend, by string) (status.Backend, error) {
	return a.localChange(service, backend, by, func(o *fleet.Operator) { o.Drain = true },
		func() (status.Backend, error) { return a.Runtime.Drain(service, backend, by) })
}

func (a *App) UndrainLocal(service, backend, by string) (status.Backend, error) {
	return a.localChange(service, backend, by, func(o *fleet.Operator) { o.Drain = false },
		func() (status.Backend, error) { return a.Runtime.Undrain(service, backend, by) })
}

func (a *App) SetWeightLocal(service, backend string, weight int, by string) (status.Backend, error) {
	if weight < 0 || weight > l4.MaxWeight {
		return status.Backend{}, fmt.Errorf("weight %d outside 0..%d: %w", weight, l4.MaxWeight, status.ErrInvalid)
	}
	return a.localChange(service, backend, by, func(o *fleet.Operator) { o.Weight = &weight },
		func() (status.Backend, error) { return a.Runtime.SetWeight(service, backend, weight, by) })
}

// Services, Service and Backend add the fleet's view of each backend.
func (a *App) Services() []status.Service {
	svcs := a.Runtime.Services()
	for i := range svcs {
		svcs[i].Discovery = a.discoveryStatus(svcs[i].Name)
	}
	if a.fleet != nil {
		sum := a.fleetSums()
		for i := range svcs {
			for j := range svcs[i].Backends {
				a.addFleet(svcs[i].Name, &svcs[i].Backends[j], sum)
			}
		}
	}
	return svcs
}

func (a *App) Service(name string) (status.Service, error) {
	s, err := a.Runtime.Service(name)
	if err == nil {
		s.Discovery = a.discoveryStatus(s.Name)
	}
	if err == nil && a.fleet != nil {
		sum := a.fleetSums()
		for j := range s.Backends {
			a.addFleet(s.Name, &s.Backends[j], sum)
		}
	}
	return s, err
}

func (a *App) Backend(service, backend string) (status.Backend, error) {
	b, err := a.Runtime.Backend(service, backend)
	if err == nil && a.fleet != nil {
		a.addFleet(service, &b, a.fleetSums())
	}
	return b, err
}

// fleetSums adds up each backend over the other live instances, as their
// registry entries last said.
func (a *App) fleetSums() map[fleet.Key]status.BackendFleet {
	sum := map[fleet.Key]status.BackendFleet{}
	for _, inst := range a.fleet.Others() {
		for _, b := range inst.Backends {
			k := fleet.Key{Service: b.Service, Backend: b.Backend}
			s := sum[k]
			s.Instances++
			if b.State == "draining" {
				s.Draining++
			}
			s.ActiveConnections += b.ActiveConnections
			sum[k] = s
		}
	}
	return sum
}

// addFleet completes b with this instance's live figures and the others'.
func (a *App) addFleet(service string, b *status.Backend, sum map[fleet.Key]status.BackendFleet) {
	k := fleet.Key{Service: service, Backend: b.Name}
	f := sum[k]
	f.Instances++
	if b.State == "draining" {
		f.Draining++
	}
	f.ActiveConnections += b.ActiveConnections
	f.Drained = f.Draining == f.Instances && f.ActiveConnections == 0
	b.Fleet = &f
	_, local := a.fleet.Want(k)
	b.Diverged = &local
}

// defaultInstanceID is the hostname and the admin port, or the PID when
// the admin server is off: unique on one machine, stable across restarts.
func defaultInstanceID(adminListen string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if _, port, err := net.SplitHostPort(adminListen); err == nil && adminListen != "" {
		return host + "-" + port
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// advertise is the admin URL others should use: the configured one, or one
// made from admin.listen (the hostname when it listens on every address),
// https:// when the admin server serves TLS.
func advertise(configured string, adm config.Admin) string {
	if configured != "" || adm.Listen == "" {
		return configured
	}
	host, port, err := net.SplitHostPort(adm.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	scheme := "http://"
	if adm.TLS() {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}

// configDigest identifies what an instance serves, so the dashboard can
// show instances that serve something else: a SHA-256 of the effective
// services (backends, checks, resilience, discovery, every default filled
// in) and the fleet's name. What is naturally per instance is left out:
// listen addresses, [admin], [log], the state file and the instance's id, so
// instances with the same services agree even when their files differ there.
func configDigest(cfg *config.Config) string {
	svcs := make([]config.Service, len(cfg.Services))
	copy(svcs, cfg.Services)
	for i := range svcs {
		svcs[i].Listen = ""
	}
	data, err := json.Marshal(struct {
		Fleet    string
		Services []config.Service
	}{cfg.Fleet.Name, svcs})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
