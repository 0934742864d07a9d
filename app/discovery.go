package app

import (
	"sort"
	"strings"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/discovery"
	"github.com/balancel4/balance-l4/fleet"
	"github.com/balancel4/balance-l4/l4"
	"github.com/balancel4/balance-l4/status"
)

// syncDiscovery starts a watcher for every discovery source of cfg that has
// none and stops those of sources cfg no longer has. A source whose block is
// unchanged keeps its watcher, and the runtime keeps what it found.
func (a *App) syncDiscovery(cfg *config.Config) {
	a.discMu.Lock()
	defer a.discMu.Unlock()
	if a.discovery == nil {
		a.discovery = map[string]map[string]*discovery.Watcher{}
	}
	want := map[string]map[string]config.Discovery{}
	for _, s := range cfg.Services {
		for _, d := range s.Discovery {
			if want[s.Name] == nil {
				want[s.Name] = map[string]config.Discovery{}
			}
			want[s.Name][d.Key()] = d
		}
	}
	for svc, ws := range a.discovery {
		for key, w := range ws {
			if _, ok := want[svc][key]; !ok {
				w.Stop()
				delete(ws, key)
			}
		}
	}
	var etcdServices []string
	for svc, ds := range want {
		if a.discovery[svc] == nil {
			a.discovery[svc] = map[string]*discovery.Watcher{}
		}
		for key, d := range ds {
			if a.discovery[svc][key] != nil {
				continue
			}
			o := discovery.Options{Service: svc, Source: d, Log: a.log, Apply: a.discoveredApplier(svc, d)}
			if d.Type == config.DiscoveryEtcd {
				a.discovery[svc][key] = discovery.NewEtcd(o)
				etcdServices = append(etcdServices, svc)
			} else {
				a.discovery[svc][key] = discovery.StartDNS(o)
			}
		}
	}
	if len(etcdServices) > 0 {
		go a.membersChanged(etcdServices) // what the fleet already knows
	}
}

func (a *App) discoveredApplier(svc string, d config.Discovery) func([]config.Backend) error {
	key, by := d.Key(), discovery.Describe(d)
	return func(bs []config.Backend) error {
		rl, err := a.Runtime.SetDiscovered(svc, key, by, bs)
		if err != nil || len(rl.BackendsAdded) == 0 {
			return err
		}
		// A backend found now may have operator state: the fleet's, or
		// (once, after a restart) the state file's.
		var keys []fleet.Key
		for _, id := range rl.BackendsAdded {
			name := strings.TrimPrefix(id, svc+"/")
			keys = append(keys, fleet.Key{Service: svc, Backend: name})
			if a.fleet == nil {
				a.restoreDiscovered(svc, name, bs)
			}
		}
		if a.fleet != nil {
			a.applyFleet(keys, false)
		}
		return nil
	}
}

// restoreDiscovered applies the state file's drain flag and weight to a
// discovered backend the first time it appears after a start: discovered
// backends do not exist yet when the state file is restored.
func (a *App) restoreDiscovered(svc, name string, bs []config.Backend) {
	a.discMu.Lock()
	var ob *l4.OperatorBackend
	for i := range a.restored {
		r := &a.restored[i]
		if r.Service == svc && r.Backend == name {
			for _, b := range bs {
				if b.Name == name && b.Address == r.Address {
					o := *r
					ob = &o
				}
			}
			a.restored = append(a.restored[:i], a.restored[i+1:]...)
			break
		}
	}
	a.discMu.Unlock()
	if ob != nil && (ob.Drained || ob.Weight != nil) {
		a.Runtime.SetOperator(svc, name, ob.Drained, ob.Weight, "restored from the state file")
	}
}

// membersChanged hands the fleet's registered members to the etcd sources
// of services (of every service when nil).
func (a *App) membersChanged(services []string) {
	if a.fleet == nil {
		return
	}
	a.discMu.Lock()
	type job struct {
		w   *discovery.Watcher
		svc string
		d   config.Discovery
	}
	var jobs []job
	for svc, ws := range a.discovery {
		if services != nil && !contains(services, svc) {
			continue
		}
		for _, w := range ws {
			if d := w.Source(); d.Type == config.DiscoveryEtcd {
				jobs = append(jobs, job{w, svc, d})
			}
		}
	}
	a.discMu.Unlock()
	for _, j := range jobs {
		members := a.fleet.Members(j.svc)
		bs := make([]config.Backend, 0, len(members))
		for name, m := range members {
			w := j.d.Weight
			if m.Weight != nil {
				w = *m.Weight
			}
			bs = append(bs, config.Backend{Name: name, Address: m.Address, Weight: w, Backup: j.d.Backup, MaxConnections: j.d.MaxConnections})
		}
		j.w.Found(bs)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// discoveryStatus is the state of a service's discovery sources.
func (a *App) discoveryStatus(svc string) []status.Discovery {
	a.discMu.Lock()
	ws := a.discovery[svc]
	out := make([]status.Discovery, 0, len(ws))
	for _, w := range ws {
		st := w.Status()
		if st.Type == config.DiscoveryEtcd && a.fleet != nil {
			if v := a.fleet.Store(); !v.Connected {
				st.LastError = v.LastError
				st.LastErrorTime = &v.Since
			} else if !v.LastSync.IsZero() && (st.LastSuccess == nil || v.LastSync.After(*st.LastSuccess)) {
				st.LastSuccess = &v.LastSync
			}
		}
		out = append(out, st)
	}
	a.discMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Type+out[i].Name < out[j].Type+out[j].Name })
	if len(out) == 0 {
		return nil
	}
	return out
}

// stopDiscovery stops every watcher; what they found stays applied.
func (a *App) stopDiscovery() {
	a.discMu.Lock()
	defer a.discMu.Unlock()
	for _, ws := range a.discovery {
		for _, w := range ws {
			w.Stop()
		}
	}
	a.discovery = nil
}
