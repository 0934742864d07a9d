package soak

import (
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

// Fault is one injection on one backend, from when it began to when it was
// undone (a kill until the restart, a disconnect until the API answered).
type Fault struct {
	Backend    int
	Kind       FaultKind
	Start, End time.Time
}

// FaultLog is the chaos loop's journal. Clients consult it when a connection
// breaks without the backend having marked it.
type FaultLog struct {
	mu     sync.Mutex
	faults []Fault
	open   map[int]int // backend -> index of its open kill, if any
}

// NewFaultLog returns an empty journal.
func NewFaultLog() *FaultLog { return &FaultLog{open: make(map[int]int)} }

// Begin records that a fault started; End closes it. Disconnects are
// recorded whole with Add.
func (f *FaultLog) Begin(backend int, kind FaultKind, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open[backend] = len(f.faults)
	f.faults = append(f.faults, Fault{Backend: backend, Kind: kind, Start: at, End: farFuture})
}

// End closes the open fault of backend.
func (f *FaultLog) End(backend int, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.open[backend]; ok {
		f.faults[i].End = at
		delete(f.open, backend)
	}
}

// Add records a fault that has already ended.
func (f *FaultLog) Add(x Fault) {
	f.mu.Lock()
	f.faults = append(f.faults, x)
	f.mu.Unlock()
}

var farFuture = time.Unix(1<<40, 0)

// OnBackend returns the kind of a fault on backend that overlaps a
// connection which landed there at landed and broke at broke.
func (f *FaultLog) OnBackend(backend int, landed, broke time.Time) (FaultKind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.faults) - 1; i >= 0; i-- {
		x := f.faults[i]
		if x.Backend == backend && !x.Start.After(broke) && !x.End.Before(landed) {
			return x.Kind, true
		}
	}
	return "", false
}

// KillNear reports whether any backend was killed while a connection that
// never reached a backend's handler was open: the proxy had connected it to a
// killed backend's accept queue, which the kernel resets when the listener
// closes. grace covers the reset travelling through the proxy.
func (f *FaultLog) KillNear(started, broke time.Time, grace time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.faults) - 1; i >= 0; i-- {
		x := f.faults[i]
		if x.Kind != FaultKilled {
			continue
		}
		if !x.Start.Before(started) && !x.Start.After(broke) && !broke.After(x.Start.Add(grace)) {
			return true
		}
	}
	return false
}
