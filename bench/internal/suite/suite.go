// Package suite runs the benchmark's data-path figures against a set of peers,
// side by side in one run: every measurement is repeated Runs times and the
// repetitions are interleaved across peers (A B C A B C ...), so slow drift of a
// shared machine hits every peer alike; the report takes medians.
//
// Each measurement reads the peer's process group from /proc before and after
// the load, so every rate comes with its cost (CPU per GB, per connection, per
// request; memory and fds per idle connection), which repeats far better than
// the rates on a noisy machine.
package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/load"
	"github.com/balancel4/balance-l4/bench/internal/peer"
)

// Options set the loads. The zero value of a field means the default of BENCH.md.
type Options struct {
	Runs            int           // repetitions of every measurement; 0 = 3
	Duration        time.Duration // of each timed load; 0 = 5 s
	ThroughputConns int           // 0 = 4
	ConnRateWorkers int           // 0 = 8
	PingPongConns   []int         // nil = 1 and 32
	IdleCounts      []int         // nil = 3 000 and 9 000
	Settle          time.Duration // pause between measurements and before sampling idle memory; 0 = 300 ms
	Loads           []string      // which of Loads to run; nil = all
	Log             io.Writer     // progress lines; nil = none
}

// Loads are the kinds of load, in the order they run.
var Loads = []string{"throughput", "connrate", "pingpong", "idle", "syscalls"}

// wants says whether the options select the kind of load.
func (o Options) wants(kind string) bool {
	return o.Loads == nil || slices.Contains(o.Loads, kind)
}

func (o Options) withDefaults() Options {
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.ThroughputConns == 0 {
		o.ThroughputConns = 4
	}
	if o.ConnRateWorkers == 0 {
		o.ConnRateWorkers = 8
	}
	if o.PingPongConns == nil {
		o.PingPongConns = []int{1, 32}
	}
	if o.IdleCounts == nil {
		o.IdleCounts = []int{3000, 9000}
	}
	if o.Settle == 0 {
		o.Settle = 300 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Validate reports bad options, all at once.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Runs < 1 {
		errs = append(errs, fmt.Errorf("runs %d: want at least 1", o.Runs))
	}
	if o.Duration < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("duration %v: want at least 100ms", o.Duration))
	}
	if o.ThroughputConns < 1 || o.ConnRateWorkers < 1 {
		errs = append(errs, fmt.Errorf("throughput connections %d, connection-rate workers %d: want at least 1", o.ThroughputConns, o.ConnRateWorkers))
	}
	for _, n := range o.PingPongConns {
		if n < 1 {
			errs = append(errs, fmt.Errorf("ping-pong connections %d: want at least 1", n))
		}
	}
	for _, k := range o.IdleCounts {
		if k < 1 {
			errs = append(errs, fmt.Errorf("idle connections %d: want at least 1", k))
		}
	}
	for _, l := range o.Loads {
		if !slices.Contains(Loads, l) {
			errs = append(errs, fmt.Errorf("load %q: want one of %v", l, Loads))
		}
	}
	if o.Loads != nil && len(o.Loads) == 0 {
		errs = append(errs, errors.New("no load selected"))
	}
	return errors.Join(errs...)
}

// Result is everything one benchmark run measured.
type Result struct {
	Options Options
	Rows    []Row
	Peers   []*PeerResult
	Start   time.Time
	End     time.Time
}

// PeerResult is what one peer did.
type PeerResult struct {
	Name     string
	Describe string
	Absent   string                      // why it did not run; "" when it ran
	Values   map[string][]float64        // by Row.Key, one value per successful run
	Errors   map[string]load.ErrorCounts // by figure, summed over runs
	Failures []string                    // measurements that failed, and why
	peer     peer.Peer
}

// Median is the median of a row's values, false when there are none.
func (p *PeerResult) Median(key string) (float64, bool) {
	return Median(p.Values[key])
}

// Failed says whether some run of figure failed.
func (p *PeerResult) Failed(figure string) bool {
	return slices.ContainsFunc(p.Failures, func(f string) bool { return strings.HasPrefix(f, figure+" run ") })
}

// Median returns the median of vs (the mean of the middle two for an even count).
func Median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Sorted(slices.Values(vs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m], true
	}
	return (s[m-1] + s[m]) / 2, true
}

// Peer returns the result of the named peer, or nil.
func (r *Result) Peer(name string) *PeerResult {
	for _, p := range r.Peers {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Run measures every figure on every peer that is present. Peers are started at
// the beginning and stopped at the end; a peer that fails to start or dies is
// reported, not fatal. Run returns an error only for bad options or when ctx ends.
func Run(ctx context.Context, o Options, peers []peer.Peer) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("running the suite: %w", err)
	}
	o = o.withDefaults()
	r := &Result{Options: o, Rows: Rows(o), Start: time.Now()}
	for _, p := range peers {
		pr := &PeerResult{Name: p.Name(), Describe: p.Describe(), Values: map[string][]float64{}, Errors: map[string]load.ErrorCounts{}, peer: p}
		r.Peers = append(r.Peers, pr)
		if err := p.Absent(); err != nil {
			pr.Absent = err.Error()
			fmt.Fprintf(o.Log, "%s: absent: %v\n", p.Name(), err)
			continue
		}
		if err := p.Start(ctx); err != nil {
			pr.Absent = "failed to start: " + err.Error()
			fmt.Fprintf(o.Log, "%s: %s\n", p.Name(), pr.Absent)
		}
	}
	defer func() {
		for _, pr := range r.Peers {
			if pr.Absent == "" {
				if err := pr.peer.Stop(); err != nil {
					fmt.Fprintf(o.Log, "%s: %v\n", pr.Name, err)
				}
			}
		}
	}()

	for _, f := range figures(o) {
		for run := 1; run <= o.Runs; run++ {
			for _, pr := range r.Peers {
				if pr.Absent != "" {
					continue
				}
				if err := ctx.Err(); err != nil {
					return r, fmt.Errorf("running the suite: %w", err)
				}
				m := measure(ctx, o, f, pr.peer)
				record(o.Log, pr, f, run, m)
				if err := sleep(ctx, o.Settle); err != nil {
					return r, fmt.Errorf("running the suite: %w", err)
				}
			}
		}
	}
	r.End = time.Now()
	return r, nil
}

// measurement is the outcome of one figure on one peer in one run.
type measurement struct {
	values map[string]float64
	errors load.ErrorCounts
	note   string // progress detail
	err    error  // the measurement failed and has no values
}

func record(log io.Writer, pr *PeerResult, f figure, run int, m measurement) {
	if pr.Errors[f.name] == nil {
		pr.Errors[f.name] = load.ErrorCounts{}
	}
	pr.Errors[f.name].Merge(m.errors)
	if m.err != nil {
		pr.Failures = append(pr.Failures, fmt.Sprintf("%s run %d: %v", f.name, run, m.err))
		fmt.Fprintf(log, "%-12s run %d  %-10s failed: %v\n", f.name, run, pr.Name, m.err)
		return
	}
	for k, v := range m.values {
		pr.Values[k] = append(pr.Values[k], v)
	}
	fmt.Fprintf(log, "%-12s run %d  %-10s %s\n", f.name, run, pr.Name, m.note)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
