package soak

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Tolerances after settling. Health checks open a socket and run a goroutine
// for a moment, so the minimum over a few samples is compared; what remains
// above the idle level by more than this is a leak.
const (
	fdSlack        = 2
	goroutineSlack = 3
)

// Summary is the outcome of one soak: every client connection classified,
// the admin server's answers, and the process's resources before and after.
type Summary struct {
	Seed     uint64
	Duration time.Duration // of the chaos phase

	Connections         int64 // client connections attempted
	LongLived           int64 // of which long-lived pinging ones
	OK                  int64 // every byte echoed, clean end
	BrokenByFault       map[FaultKind]int64
	BrokenOtherwise     int64 // broken on a backend that no fault touched
	RefusedWhileHealthy int64 // closed before reaching any backend, or the dial failed
	Corrupted           int64
	Timeouts            int64 // no progress for progressTimeout, no fault to blame
	BytesEchoed         int64

	Admin         AdminStats
	HealthzFailed int64 // /healthz probes that did not answer 200
	Chaos         map[string]int
	ReloadsGood   int
	ReloadsBad    int
	Procs         []ProcFigures // one per balance-l4 instance
	Settled       bool          // active connections back to 0, every backend healthy, on every instance
	Fleet         *FleetSummary // a fleet soak's figures; nil alone

	Problems []string // details of what missed a target, first ones only
}

// ProcFigures are one balance-l4 process's resources and end.
type ProcFigures struct {
	Name            string // the fleet instance id, or "balance-l4"
	FDsIdle         FDs
	FDsAfter        FDs
	GoroutinesIdle  int
	GoroutinesPeak  int
	GoroutinesAfter int
	RSSIdle         int64  // resident memory, bytes, before the chaos
	RSSAfter        int64  // and after settling: shown, not judged (the Go heap grows and shrinks in its own time)
	ServiceCounters string // the service's own counters from the admin API, at the end
	Alive           bool   // still running at the end, and exited 0 on SIGTERM
}

// BrokenByFaultTotal sums the connections broken on purpose.
func (s *Summary) BrokenByFaultTotal() int64 {
	var n int64
	for _, v := range s.BrokenByFault {
		n += v
	}
	return n
}

// Failures lists every target the soak missed; empty means it passed.
func (s *Summary) Failures() []string {
	var f []string
	miss := func(cond bool, format string, args ...any) {
		if cond {
			f = append(f, fmt.Sprintf(format, args...))
		}
	}
	miss(s.Connections == 0 || s.OK == 0, "no client connection succeeded (%d attempted)", s.Connections)
	miss(s.Corrupted > 0, "%d connections corrupted", s.Corrupted)
	miss(s.RefusedWhileHealthy > 0, "%d connections refused while a healthy backend was available", s.RefusedWhileHealthy)
	miss(s.BrokenOtherwise > 0, "%d connections broken without a fault on their backend", s.BrokenOtherwise)
	miss(s.Timeouts > 0, "%d connections timed out without a fault on their backend", s.Timeouts)
	miss(s.Admin.Status5xx > 0, "%d admin answers were 5xx", s.Admin.Status5xx)
	miss(s.Admin.Hangs > 0, "%d admin requests hung past the client timeout", s.Admin.Hangs)
	miss(s.Admin.Unexpected > 0, "%d admin answers had a status other than SPEC's", s.Admin.Unexpected)
	miss(s.HealthzFailed > 0, "/healthz failed %d times", s.HealthzFailed)
	miss(!s.Settled, "connections or backends did not settle back to idle")
	for _, p := range s.Procs {
		miss(!p.Alive, "%s exited (or not with 0 on SIGTERM)", p.Name)
		miss(p.FDsAfter.NonPipe() > p.FDsIdle.NonPipe()+fdSlack, "%s: fds (pipes aside) grew from %d to %d", p.Name, p.FDsIdle.NonPipe(), p.FDsAfter.NonPipe())
		miss(p.GoroutinesAfter > p.GoroutinesIdle+goroutineSlack, "%s: goroutines grew from %d to %d", p.Name, p.GoroutinesIdle, p.GoroutinesAfter)
	}
	if s.Fleet != nil {
		f = append(f, s.Fleet.failures()...)
	}
	return f
}

func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak summary (seed %d, chaos for %v)\n", s.Seed, s.Duration.Round(time.Second))
	fmt.Fprintf(&b, "  connections              %d (%d long-lived), %.1f MiB echoed\n", s.Connections, s.LongLived, float64(s.BytesEchoed)/(1<<20))
	fmt.Fprintf(&b, "  ok                       %d\n", s.OK)
	fmt.Fprintf(&b, "  broken by injected fault %d", s.BrokenByFaultTotal())
	for _, k := range slices.Sorted(maps.Keys(s.BrokenByFault)) {
		fmt.Fprintf(&b, " %s=%d", k, s.BrokenByFault[k])
	}
	fmt.Fprintf(&b, "\n  broken otherwise         %d\n", s.BrokenOtherwise)
	fmt.Fprintf(&b, "  refused while healthy    %d\n", s.RefusedWhileHealthy)
	fmt.Fprintf(&b, "  corrupted                %d\n", s.Corrupted)
	fmt.Fprintf(&b, "  timeouts (no fault)      %d\n", s.Timeouts)
	fmt.Fprintf(&b, "  admin requests           %d: 5xx %d, hangs %d, unexpected status %d, no response %d; by status %v\n",
		s.Admin.Requests, s.Admin.Status5xx, s.Admin.Hangs, s.Admin.Unexpected, s.Admin.NoResponse, s.Admin.ByStatus)
	if s.Fleet != nil {
		fmt.Fprintf(&b, "  refused: fleet store unreachable  %d during etcd faults (expected, not 5xx); the main chaos's by verb %v\n", s.Admin.FleetRefused, s.Fleet.Refused)
	}
	fmt.Fprintf(&b, "  healthz failures         %d\n", s.HealthzFailed)
	fmt.Fprintf(&b, "  reloads                  %d good, %d bad\n", s.ReloadsGood, s.ReloadsBad)
	fmt.Fprintf(&b, "  chaos actions            %v\n", s.Chaos)
	if s.Fleet != nil {
		s.Fleet.write(&b)
	}
	for _, p := range s.Procs {
		prefix := "  "
		if len(s.Procs) > 1 {
			fmt.Fprintf(&b, "  instance %s:\n", p.Name)
			prefix = "    "
		}
		fmt.Fprintf(&b, "%sfds idle                 %v\n", prefix, p.FDsIdle)
		fmt.Fprintf(&b, "%sfds after settling       %v (splice pipes are pooled by the copy engine and not judged)\n", prefix, p.FDsAfter)
		fmt.Fprintf(&b, "%sgoroutines               idle %d, peak %d, after settling %d\n", prefix, p.GoroutinesIdle, p.GoroutinesPeak, p.GoroutinesAfter)
		fmt.Fprintf(&b, "%sresident memory          idle %.1f MiB, after settling %.1f MiB\n", prefix, float64(p.RSSIdle)/(1<<20), float64(p.RSSAfter)/(1<<20))
		fmt.Fprintf(&b, "%sbalance-l4's counters    %s\n", prefix, p.ServiceCounters)
		fmt.Fprintf(&b, "%salive %v\n", prefix, p.Alive)
	}
	fmt.Fprintf(&b, "  settled %v\n", s.Settled)
	if f := s.Failures(); len(f) > 0 {
		fmt.Fprintf(&b, "  TARGETS MISSED:\n")
		for _, x := range f {
			fmt.Fprintf(&b, "    - %s\n", x)
		}
	}
	if len(s.Problems) > 0 {
		fmt.Fprintf(&b, "  first problems:\n")
		for _, p := range s.Problems {
			fmt.Fprintf(&b, "    - %s\n", p)
		}
	}
	return b.String()
}

// maxProblems bounds the details kept for the report.
const maxProblems = 40

// tally classifies client attempts as they finish.
type tally struct {
	reg    *Registry
	faults *FaultLog

	mu sync.Mutex
	s  *Summary
}

// record classifies a finished attempt and counts it.
func (t *tally) record(a attempt) {
	outcome, detail := classify(a, t.reg, t.faults)
	t.reg.Forget(a.id)
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	s.Connections++
	if a.long {
		s.LongLived++
	}
	s.BytesEchoed += a.echoed
	switch outcome.kind {
	case outcomeOK:
		s.OK++
		return
	case outcomeFault:
		s.BrokenByFault[outcome.fault]++
		return
	case outcomeCorrupted:
		s.Corrupted++
	case outcomeBrokenOtherwise:
		s.BrokenOtherwise++
	case outcomeRefused:
		s.RefusedWhileHealthy++
	case outcomeTimeout:
		s.Timeouts++
	}
	t.problem("%s: %s", outcome.kind, detail)
}

// problem keeps a detail line for the report; call with t.mu held.
func (t *tally) problem(format string, args ...any) {
	if len(t.s.Problems) < maxProblems {
		t.s.Problems = append(t.s.Problems, fmt.Sprintf(format, args...))
	}
}

func (t *tally) addProblem(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.problem(format, args...)
}
