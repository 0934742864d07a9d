package suite

import (
	"fmt"
	"strings"
)

// Kind says how a row compares across peers.
type Kind int

const (
	// Rate is more-is-better work done (Gbit/s, connections/s, requests/s).
	Rate Kind = iota
	// Latency is less-is-better time per request.
	Latency
	// Cost is less-is-better resource per operation; direct has none.
	Cost
	// Count is a plain count with no ratio (idle connections held).
	Count
)

// Row is one line of the report: a metric every peer is measured on.
type Row struct {
	Key    string // key in PeerResult.Values
	Label  string
	Kind   Kind
	Digits int // decimals shown
}

// Figure is the name of the load the row's value comes from.
func (r Row) Figure() string {
	f, _, _ := strings.Cut(r.Key, ".")
	return f
}

// Rows lists the report's rows for o, in order: load by load, and within each
// load the proxy's cost per operation first (CPU per GB, per connection, per
// request; RSS and fds per idle connection), then what the load achieved (rates,
// latencies, connections held). On a machine where the load generator saturates
// before the proxies do, the cost is the figure that tells the peers apart.
func Rows(o Options) []Row {
	var rows []Row
	if o.wants("throughput") {
		rows = append(rows,
			Row{Key: "throughput.cpu_ms_per_gb", Label: "proxy CPU per GB, ms", Kind: Cost},
			Row{Key: "throughput.gbps", Label: fmt.Sprintf("throughput (%d conns), Gbit/s", o.ThroughputConns), Kind: Rate, Digits: 1},
		)
	}
	if o.wants("connrate") {
		rows = append(rows,
			Row{Key: "connrate.cpu_us_per_conn", Label: "proxy CPU per connection, µs", Kind: Cost, Digits: 1},
			Row{Key: "connrate.per_s", Label: fmt.Sprintf("connections/s (%d workers)", o.ConnRateWorkers), Kind: Rate},
		)
	}
	for _, n := range o.PingPongConns {
		if !o.wants("pingpong") {
			break
		}
		p := fmt.Sprintf("pingpong%d.", n)
		name := fmt.Sprintf("%d conns ping-pong", n)
		if n == 1 {
			name = "1 conn ping-pong"
		}
		rows = append(rows,
			Row{Key: p + "cpu_us_per_req", Label: name + ", proxy CPU per request, µs", Kind: Cost, Digits: 1},
			Row{Key: p + "per_s", Label: name + ", req/s", Kind: Rate},
			Row{Key: p + "p50_us", Label: name + ", p50 µs", Kind: Latency},
			Row{Key: p + "p90_us", Label: name + ", p90 µs", Kind: Latency},
			Row{Key: p + "p99_us", Label: name + ", p99 µs", Kind: Latency},
			Row{Key: p + "p999_us", Label: name + ", p99.9 µs", Kind: Latency},
		)
	}
	if o.wants("syscalls") {
		rows = append(rows,
			Row{Key: "syscalls.per_conn", Label: fmt.Sprintf("system calls per connection (strace -f -c, %d workers)", o.ConnRateWorkers), Kind: Cost, Digits: 1},
			Row{Key: "syscalls.conns", Label: "system calls: connections counted", Kind: Count},
		)
	}
	for _, k := range o.IdleCounts {
		if !o.wants("idle") {
			break
		}
		p := fmt.Sprintf("idle%d.", k)
		rows = append(rows,
			Row{Key: p + "rss_per_conn", Label: fmt.Sprintf("idle %d: RSS per connection, bytes", k), Kind: Cost},
			Row{Key: p + "fds_per_conn", Label: fmt.Sprintf("idle %d: fds per connection", k), Kind: Cost, Digits: 1},
			Row{Key: p + "held", Label: fmt.Sprintf("idle %d: connections held", k), Kind: Count},
		)
	}
	return rows
}
