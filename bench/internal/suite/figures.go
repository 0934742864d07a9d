package suite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/load"
	"github.com/balancel4/balance-l4/bench/internal/peer"
	"github.com/balancel4/balance-l4/bench/internal/procstat"
)

// figure is one load of BENCH.md's table.
type figure struct {
	name string
	run  func(ctx context.Context, o Options, p peer.Peer) measurement
}

func figures(o Options) []figure {
	var fs []figure
	if o.wants("throughput") {
		fs = append(fs, figure{"throughput", throughput})
	}
	if o.wants("connrate") {
		fs = append(fs, figure{"connrate", connRate})
	}
	for _, n := range o.PingPongConns {
		if !o.wants("pingpong") {
			break
		}
		fs = append(fs, figure{fmt.Sprintf("pingpong%d", n), func(ctx context.Context, o Options, p peer.Peer) measurement {
			return pingPong(ctx, o, p, n)
		}})
	}
	if o.wants("syscalls") {
		fs = append(fs, figure{"syscalls", syscalls})
	}
	for _, k := range o.IdleCounts {
		if !o.wants("idle") {
			break
		}
		fs = append(fs, figure{fmt.Sprintf("idle%d", k), func(ctx context.Context, o Options, p peer.Peer) measurement {
			return idle(ctx, o, p, k)
		}})
	}
	return fs
}

// measure runs f on p, restarting p first if its process has died.
func measure(ctx context.Context, o Options, f figure, p peer.Peer) measurement {
	if err := p.Alive(); err != nil {
		_ = p.Stop()
		if serr := p.Start(ctx); serr != nil {
			return measurement{err: fmt.Errorf("peer died (%v) and did not restart: %w", err, serr)}
		}
		fmt.Fprintf(o.Log, "%s: restarted after: %v\n", p.Name(), err)
	}
	return f.run(ctx, o, p)
}

// meter reads a peer's process group before and after a load.
type meter struct {
	pid    int
	before procstat.Usage
}

func startMeter(p peer.Peer) (meter, error) {
	m := meter{pid: p.PID()}
	if m.pid == 0 {
		return m, nil
	}
	u, err := procstat.Read(m.pid)
	if err != nil {
		return m, fmt.Errorf("reading the cost of %s: %w", p.Name(), err)
	}
	m.before = u
	return m, nil
}

// delta is the change since startMeter; ok is false for a peer with no process.
func (m meter) delta() (d procstat.Usage, ok bool, err error) {
	if m.pid == 0 {
		return procstat.Usage{}, false, nil
	}
	after, err := procstat.Read(m.pid)
	if err != nil {
		return procstat.Usage{}, false, fmt.Errorf("reading the cost after the load: %w", err)
	}
	return procstat.Usage{
		CPU: after.CPU - m.before.CPU,
		RSS: after.RSS - m.before.RSS,
		FDs: after.FDs - m.before.FDs,
	}, true, nil
}

// withCPU runs a load between two meter readings and returns the proxy's CPU.
func withCPU(p peer.Peer, run func() error) (cpu time.Duration, measured bool, err error) {
	m, err := startMeter(p)
	if err != nil {
		return 0, false, err
	}
	if err := run(); err != nil {
		return 0, false, err
	}
	d, ok, err := m.delta()
	return d.CPU, ok, err
}

func throughput(ctx context.Context, o Options, p peer.Peer) measurement {
	var r load.ThroughputResult
	cpu, ok, err := withCPU(p, func() (err error) {
		r, err = load.Throughput(ctx, p.Frontends().Sink, o.ThroughputConns, o.Duration)
		return err
	})
	if err == nil && r.Bytes == 0 {
		err = errors.New("no bytes delivered")
	}
	if err != nil {
		return measurement{errors: r.Errors, err: err}
	}
	m := measurement{values: map[string]float64{"throughput.gbps": r.Gbps()}, errors: r.Errors}
	m.note = fmt.Sprintf("%.2f Gbit/s", r.Gbps())
	if ok {
		perGB := float64(cpu.Milliseconds()) / (float64(r.Bytes) / 1e9)
		m.values["throughput.cpu_ms_per_gb"] = perGB
		m.note += fmt.Sprintf(", %.0f ms CPU per GB", perGB)
	}
	return m
}

func connRate(ctx context.Context, o Options, p peer.Peer) measurement {
	var r load.ConnRateResult
	cpu, ok, err := withCPU(p, func() (err error) {
		r, err = load.ConnRate(ctx, p.Frontends().Echo, o.ConnRateWorkers, o.Duration)
		return err
	})
	if err == nil && r.Conns == 0 {
		err = fmt.Errorf("no connection completed (errors %v)", r.Errors)
	}
	if err != nil {
		return measurement{errors: r.Errors, err: err}
	}
	m := measurement{values: map[string]float64{"connrate.per_s": r.PerSecond()}, errors: r.Errors}
	m.note = fmt.Sprintf("%.0f conns/s", r.PerSecond())
	if ok {
		per := float64(cpu.Microseconds()) / float64(r.Conns)
		m.values["connrate.cpu_us_per_conn"] = per
		m.note += fmt.Sprintf(", %.0f µs CPU per conn", per)
	}
	if n := r.Errors.Total(); n > 0 {
		m.note += fmt.Sprintf(", errors %v", r.Errors)
	}
	return m
}

func pingPong(ctx context.Context, o Options, p peer.Peer, conns int) measurement {
	var r load.PingPongResult
	cpu, ok, err := withCPU(p, func() (err error) {
		r, err = load.PingPong(ctx, p.Frontends().Echo, conns, o.Duration)
		return err
	})
	if err == nil && r.Requests == 0 {
		err = fmt.Errorf("no request completed (errors %v)", r.Errors)
	}
	if err != nil {
		return measurement{errors: r.Errors, err: err}
	}
	us := func(q float64) float64 { return float64(r.Latency.Quantile(q)) / 1e3 }
	k := fmt.Sprintf("pingpong%d.", conns)
	m := measurement{errors: r.Errors, values: map[string]float64{
		k + "per_s":   r.PerSecond(),
		k + "p50_us":  us(0.5),
		k + "p90_us":  us(0.9),
		k + "p99_us":  us(0.99),
		k + "p999_us": us(0.999),
	}}
	m.note = fmt.Sprintf("%.0f req/s, p50 %.0f µs, p99 %.0f µs", r.PerSecond(), us(0.5), us(0.99))
	if ok {
		per := float64(cpu.Microseconds()) / float64(r.Requests)
		m.values[k+"cpu_us_per_req"] = per
		m.note += fmt.Sprintf(", %.1f µs CPU per req", per)
	}
	return m
}

// idle restarts the peer so its memory starts from a fresh process, opens k
// connections with one ping each, and measures growth while they are held.
func idle(ctx context.Context, o Options, p peer.Peer, k int) measurement {
	if err := p.Stop(); err != nil {
		return measurement{err: fmt.Errorf("restarting for a fresh process: %w", err)}
	}
	if err := p.Start(ctx); err != nil {
		return measurement{err: fmt.Errorf("restarting for a fresh process: %w", err)}
	}
	mt, err := startMeter(p)
	if err != nil {
		return measurement{err: err}
	}
	set, err := load.OpenIdle(ctx, p.Frontends().Echo, k)
	defer set.Close()
	if err != nil {
		return measurement{errors: set.Errors, err: err}
	}
	if set.Held() == 0 {
		return measurement{errors: set.Errors, err: fmt.Errorf("held no connection (errors %v)", set.Errors)}
	}
	// Let the proxy finish its work on the last connections before sampling.
	if err := sleep(ctx, o.Settle); err != nil {
		return measurement{errors: set.Errors, err: err}
	}
	d, ok, err := mt.delta()
	if err != nil {
		return measurement{errors: set.Errors, err: err}
	}
	key := fmt.Sprintf("idle%d.", k)
	held := float64(set.Held())
	m := measurement{errors: set.Errors, values: map[string]float64{key + "held": held}}
	m.note = fmt.Sprintf("held %d of %d", set.Held(), k)
	if ok {
		m.values[key+"rss_per_conn"] = float64(d.RSS) / held
		m.values[key+"fds_per_conn"] = float64(d.FDs) / held
		m.note += fmt.Sprintf(", %.0f bytes and %.2f fds per conn", float64(d.RSS)/held, float64(d.FDs)/held)
	}
	if n := set.Errors.Total(); n > 0 {
		m.note += fmt.Sprintf(", errors %v", set.Errors)
	}
	return m
}
