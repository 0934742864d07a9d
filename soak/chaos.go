package soak

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// chaos injects faults and operator actions while clients run. Backend 0 is
// the anchor: it is never killed, stalled, drained, weighed to 0 or removed,
// so a healthy backend is always available and a refused client is the
// proxy's fault. Every other backend gets everything. In a fleet every admin
// action and reload goes to an instance chosen at random; drains, undrains
// and weights are fleet-wide, so what one instance was told all must obey.
type chaos struct {
	rng      *rand.Rand
	insts    []*instance
	backends []*EchoBackend
	faults   *FaultLog
	logf     func(format string, args ...any)

	counts      map[string]int
	reloadsGood int
	reloadsBad  int
	restartAt   map[int]time.Time // killed backends and when to restart them
	unstallAt   map[int]time.Time // the stalled backend and when to release it
	drained     map[int]bool      // drained, or maybe drained (a fleet write whose outcome is unknown)
	refused     map[string]int    // fleet-wide changes answered 503 "fleet store unreachable", by verb
	err         error             // a harness failure (a backend that cannot listen again)
}

// fleet reports whether the chaos acts on a fleet of instances.
func (c *chaos) fleet() bool { return len(c.insts) > 1 }

// pick chooses the instance an action goes through. Alone, it draws nothing
// from rng, so a seed replays the same chaos as before fleets existed.
func (c *chaos) pick() *instance {
	if len(c.insts) == 1 {
		return c.insts[0]
	}
	return c.insts[c.rng.IntN(len(c.insts))]
}

// spec is the original configuration's backends and service, the same on
// every instance.
func (c *chaos) spec() configSpec { return c.insts[0].spec }

// action is one thing the chaos loop can do; weight is its relative chance.
type action struct {
	name   string
	weight int
	do     func(c *chaos) bool // false: not possible right now
}

var actions = []action{
	{"kill", 5, (*chaos).kill},
	{"stall", 3, (*chaos).stall},
	{"drain", 12, (*chaos).drainToggle},
	{"disconnect", 5, (*chaos).disconnect},
	{"weight", 10, (*chaos).weight},
	{"reload-sighup-good", 5, func(c *chaos) bool { return c.reload(true, true) }},
	{"reload-sighup-bad", 4, func(c *chaos) bool { return c.reload(true, false) }},
	{"reload-api-good", 3, func(c *chaos) bool { return c.reload(false, true) }},
	{"reload-api-bad", 3, func(c *chaos) bool { return c.reload(false, false) }},
	{"hostile-admin", 25, (*chaos).hostile},
	{"read-admin", 8, (*chaos).read},
}

// run acts every 100-400 ms until stop is closed: first one of every action
// in random order (so even a short soak covers them all), then at random by
// weight. It then restarts what it killed and releases what it stalled.
func (c *chaos) run(stop <-chan struct{}) {
	c.counts = make(map[string]int)
	c.restartAt = make(map[int]time.Time)
	c.unstallAt = make(map[int]time.Time)
	c.drained = make(map[int]bool)
	c.refused = make(map[string]int)
	first := c.rng.Perm(len(actions))
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for tick := 0; tick < maxChaosTicks; tick++ {
		select {
		case <-stop:
			c.undoFaults(time.Time{})
			return
		case <-timer.C:
		}
		c.undoFaults(time.Now())
		var a action
		if tick < len(first) {
			a = actions[first[tick]]
		} else {
			n := c.rng.IntN(total)
			for _, a = range actions {
				if n -= a.weight; n < 0 {
					break
				}
			}
		}
		if a.do(c) {
			c.counts[a.name]++
		}
		timer.Reset(time.Duration(100+c.rng.IntN(300)) * time.Millisecond)
	}
	c.undoFaults(time.Time{})
}

// maxChaosTicks bounds the loop whatever the duration (a day at 100 ms).
const maxChaosTicks = 864_000

// undoFaults restarts killed backends and releases stalled ones that are due
// at now; the zero time means all of them.
func (c *chaos) undoFaults(now time.Time) {
	for i, at := range c.restartAt {
		if now.IsZero() || !now.Before(at) {
			if err := c.backends[i].Restart(); err != nil && c.err == nil {
				c.err = err
			}
			delete(c.restartAt, i)
			c.logf("restarted backend %d", i)
		}
	}
	for i, at := range c.unstallAt {
		if now.IsZero() || !now.Before(at) {
			held := c.backends[i].Unstall()
			delete(c.unstallAt, i)
			c.logf("released stalled backend %d (%d connections held, reset)", i, held)
		}
	}
}

// victim picks a chaos backend (never the anchor) that is neither killed nor
// stalled.
func (c *chaos) victim() (int, bool) {
	for range 10 {
		i := 1 + c.rng.IntN(len(c.backends)-1)
		if _, k := c.restartAt[i]; k {
			continue
		}
		if _, s := c.unstallAt[i]; s {
			continue
		}
		return i, true
	}
	return 0, false
}

func (c *chaos) kill() bool {
	if len(c.restartAt) > 0 { // one dead backend at a time: retries always find a live one
		return false
	}
	i, ok := c.victim()
	if !ok {
		return false
	}
	f := c.faults.Begin(i, FaultKilled, time.Now())
	n := c.backends[i].Kill()
	c.faults.End(f, time.Now())
	down := time.Duration(300+c.rng.IntN(2200)) * time.Millisecond
	c.restartAt[i] = time.Now().Add(down)
	c.logf("killed backend %d (%d connections reset), down for %v", i, n, down)
	return true
}

func (c *chaos) stall() bool {
	if len(c.unstallAt) > 0 {
		return false
	}
	i, ok := c.victim()
	if !ok {
		return false
	}
	c.backends[i].Stall()
	d := time.Duration(1500+c.rng.IntN(8000)) * time.Millisecond // sometimes past the clients' progress timeout
	c.unstallAt[i] = time.Now().Add(d)
	c.logf("stalled backend %d for %v", i, d)
	return true
}

func (c *chaos) backendPath(i int) string {
	return "/api/v1/services/" + serviceName + "/backends/" + c.spec().Backends[i].Name
}

// okOrGone are the statuses of an action on a chaos backend, which a reload
// may have removed.
var okOrGone = []int{http.StatusOK, http.StatusNotFound}

func (c *chaos) drainToggle() bool {
	i := 1 + c.rng.IntN(len(c.backends)-1)
	verb := "drain"
	if c.drained[i] {
		verb = "undrain"
	} else if len(c.drained) >= 2 {
		return false
	}
	in := c.pick()
	code, body, err := in.admin.Do(Request{Method: http.MethodPost, Path: c.backendPath(i) + "/" + verb, Want: okOrGone, FleetWrite: c.fleet()})
	if err != nil {
		return true
	}
	switch {
	case c.fleet() && IsFleetRefusal(code, body):
		// Refused while etcd is away. "nothing was changed" is certain;
		// otherwise the outcome is unknown, and a drain counts as done (a
		// later toggle undoes it) while an undrain keeps it marked drained.
		c.refused[verb]++
		if verb == "drain" && !bytes.Contains(body, []byte("nothing was changed")) {
			c.drained[i] = true
		}
	case verb == "drain" && code == http.StatusOK:
		c.drained[i] = true
	case verb == "undrain" && code == http.StatusNotFound && c.fleet():
		// This instance's file lacks the backend; in etcd, and on the
		// other instances, it is still drained.
	default:
		delete(c.drained, i)
	}
	c.logf("%s backend %d via %s: %d %s", verb, i, in.name(), code, shorten(string(body), 80))
	return true
}

func (c *chaos) disconnect() bool {
	i := c.rng.IntN(len(c.backends))
	want := okOrGone
	if i == 0 {
		want = []int{http.StatusOK}
	}
	in := c.pick()
	// Alone, the fault concerns every connection, as it always did.
	on := allInstances
	if c.fleet() {
		on = in.index
	}
	f := c.faults.BeginOn(on, i, FaultDisconnected, time.Now())
	code, body, _ := in.admin.Do(Request{Method: http.MethodPost, Path: c.backendPath(i) + "/disconnect", Want: want})
	c.faults.End(f, time.Now())
	c.logf("disconnect backend %d via %s: %d %s", i, in.name(), code, shorten(string(body), 40))
	return true
}

func (c *chaos) weight() bool {
	i := c.rng.IntN(len(c.backends))
	w, want := c.rng.IntN(257), okOrGone
	if i == 0 {
		w, want = 1+c.rng.IntN(256), []int{http.StatusOK}
	}
	in := c.pick()
	code, body, _ := in.admin.Do(Request{Method: http.MethodPut, Path: c.backendPath(i) + "/weight",
		Body: []byte(`{"weight": ` + strconv.Itoa(w) + `}`), Want: want, FleetWrite: c.fleet()})
	if c.fleet() && IsFleetRefusal(code, body) {
		c.refused["weight"]++
	}
	c.logf("weight of backend %d to %d via %s: %d %s", i, w, in.name(), code, shorten(string(body), 80))
	return true
}

// variant is a valid configuration unlike the original spec: another
// algorithm, other weights, and sometimes one chaos backend removed.
func (c *chaos) variant(spec configSpec) configSpec {
	v := spec
	v.Algorithm = []string{"round_robin", "least_connections", "random_two"}[c.rng.IntN(3)]
	v.Backends = nil
	drop := -1
	if c.rng.IntN(3) == 0 {
		drop = 1 + c.rng.IntN(len(spec.Backends)-1)
	}
	for i, b := range spec.Backends {
		if i == drop {
			continue
		}
		b.Weight = 1 + c.rng.IntN(4)
		v.Backends = append(v.Backends, b)
	}
	return v
}

func (c *chaos) reload(bySignal, good bool) bool {
	in := c.pick()
	var content, what string
	if good {
		v := c.variant(in.spec)
		content = v.TOML()
		what = fmt.Sprintf("good (%s, %d backends)", v.Algorithm, len(v.Backends))
		c.reloadsGood++
	} else {
		bad := in.spec.badConfigs()
		k := c.rng.IntN(len(bad))
		content = bad[k]
		what = fmt.Sprintf("bad #%d", k)
		c.reloadsBad++
	}
	if err := writeAtomically(in.path, content); err != nil {
		c.err = err
		return false
	}
	if bySignal {
		if err := in.proc.Signal(syscall.SIGHUP); err != nil && c.err == nil {
			c.err = err
		}
		c.logf("SIGHUP to %s with a %s file", in.name(), what)
		return true
	}
	want := http.StatusOK
	if !good {
		want = http.StatusBadRequest
	}
	code, body, _ := in.admin.Do(Request{Method: http.MethodPost, Path: "/api/v1/reload", Want: []int{want}})
	c.logf("POST reload to %s with a %s file: %d %s", in.name(), what, code, shorten(string(body), 60))
	return true
}

func (c *chaos) hostile() bool {
	spec := c.spec()
	reqs := hostileRequests(serviceName, spec.Backends[c.rng.IntN(len(spec.Backends))].Name)
	in := c.pick()
	for range 1 + c.rng.IntN(3) {
		r := reqs[c.rng.IntN(len(reqs))]
		code, _, err := in.admin.Do(r)
		c.logf("hostile %s %s to %s: %d %v", r.Method, shorten(r.Path, 60), in.name(), code, errOrNil(err))
	}
	return true
}

func (c *chaos) read() bool {
	paths := []string{"/api/v1/services", "/api/v1/services/" + serviceName, c.backendPath(0), "/metrics", "/"}
	if c.fleet() {
		// Reads answer 200 from local state whether etcd answers or not.
		paths = append(paths, "/api/v1/fleet")
	}
	p := paths[c.rng.IntN(len(paths))]
	in := c.pick()
	code, _, _ := in.admin.Do(Request{Method: http.MethodGet, Path: p, Want: []int{http.StatusOK}})
	c.logf("GET %s from %s: %d", p, in.name(), code)
	return true
}

func errOrNil(err error) any {
	if err == nil {
		return ""
	}
	return err
}
