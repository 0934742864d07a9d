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
	Kind       FaultKind
	Start, End time.Time
}

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

// Add records a fault.
func (f *FaultLog) Add(x Fault) {
	f.mu.Lock()
	f.faults = append(f.faults, x)
	f.mu.Unlock()
}

// Blame returns the kind of a fault that may have broken a connection that
// was opened at started and broke at broke: a fault on backend (any backend
// when backend < 0) that ended after the connection was opened, and began
// before, and at most faultGrace before, the break.
func (f *FaultLog) Blame(backend int, started, broke time.Time) (FaultKind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.faults) - 1; i >= 0; i-- {
		x := f.faults[i]
		if (backend < 0 || x.Backend == backend) && !x.End.Before(started) &&
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
			parts = append(parts, fmt.Sprintf("%s backend %d %s-%s", x.Kind, x.Backend, x.Start.Format("05.000"), x.End.Format("05.000")))
		}
	}
	if len(parts) == 0 {
		return "no fault nearby"
	}
	return "faults nearby: " + strings.Join(parts, ", ")
}
