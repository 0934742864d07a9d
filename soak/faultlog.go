package soak

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// FaultKind names what the chaos loop did to a backend.
type FaultKind string

// The faults that may break a client connection on purpose.
const (
	FaultKilled       FaultKind = "killed"       // listener closed, every connection reset
	FaultStalled      FaultKind = "stalled"      // accepted, never answered
	FaultDisconnected FaultKind = "disconnected" // the admin API's disconnect action
)

// Fault is one injection on one backend: a kill from just before the
// listener closed until every connection was reset, a disconnect from the
// request until the API answered. (Stalls are not journalled: the stalled
// backend marks the connections it holds itself.)
type Fault struct {
	Backend    int
	Instance   int // the balance-l4 instance it acted through (a disconnect), or allInstances
	Kind       FaultKind
	Start, End time.Time
}

// allInstances marks a fault every instance's connections feel: a backend
// killed is killed for the whole fleet.
const allInstances = -1

// faultGrace is how long after a fault a connection may still break because
// of it: the reset or close has to travel through a busy proxy.
const faultGrace = 2 * time.Second

// FaultLog is the chaos loop's journal. Clients consult it when a connection
// breaks without the backend having marked it.
type FaultLog struct {
	mu     sync.Mutex
	faults []Fault
}

// NewFaultLog returns an empty journal.
func NewFaultLog() *FaultLog { return &FaultLog{} }

// Begin records a fault that starts now and has not ended yet, so that
// connections it breaks while it is under way find it; End closes it. The
// fault concerns the backend's connections through every instance.
func (f *FaultLog) Begin(backend int, kind FaultKind, at time.Time) (index int) {
	return f.BeginOn(allInstances, backend, kind, at)
}

// BeginOn is Begin for a fault that concerns only the connections through
// one balance-l4 instance (SPEC §6: a disconnect acts on the answering
// instance's connections only).
func (f *FaultLog) BeginOn(instance, backend int, kind FaultKind, at time.Time) (index int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, Fault{Backend: backend, Instance: instance, Kind: kind, Start: at, End: farFuture})
	return len(f.faults) - 1
}

// End records when the fault Begin returned index for was over.
func (f *FaultLog) End(index int, at time.Time) {
	f.mu.Lock()
	f.faults[index].End = at
	f.mu.Unlock()
}

// farFuture is the end of a fault still under way.
var farFuture = time.Unix(1<<40, 0)

// Blame returns the kind of a fault that may have broken a connection that
// was opened at started through instance and broke at broke: a fault on
// backend (any backend when backend < 0), through that instance or all of
// them, that ended after the connection was opened, and began before, and at
// most faultGrace before, the break.
func (f *FaultLog) Blame(instance, backend int, started, broke time.Time) (FaultKind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.faults) - 1; i >= 0; i-- {
		x := f.faults[i]
		if (backend < 0 || x.Backend == backend) && (x.Instance == allInstances || x.Instance == instance) &&
			!x.End.Before(started) &&
			!x.Start.After(broke) && !broke.After(x.End.Add(faultGrace)) {
			return x.Kind, true
		}
	}
	return "", false
}

// Near describes the faults within faultGrace of [from, to], for reports.
func (f *FaultLog) Near(from, to time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for _, x := range f.faults {
		if !x.End.Before(from.Add(-faultGrace)) && !x.Start.After(to.Add(faultGrace)) {
			on := ""
			if x.Instance != allInstances {
				on = fmt.Sprintf(" via instance %d", x.Instance)
			}
			parts = append(parts, fmt.Sprintf("%s backend %d%s %s-%s", x.Kind, x.Backend, on, x.Start.Format("05.000"), x.End.Format("05.000")))
		}
	}
	if len(parts) == 0 {
		return "no fault nearby"
	}
	return "faults nearby: " + strings.Join(parts, ", ")
}
