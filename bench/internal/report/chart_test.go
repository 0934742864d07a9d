package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/load"
	"github.com/balancel4/balance-l4/bench/internal/suite"
)

var update = flag.Bool("update", false, "rewrite testdata/chart.golden.svg from the synthetic report")

// synthetic is a run of every load on five peers, one of them absent, with the
// medians of issue 15's table where it has them (values are per-run, three runs).
func synthetic() Report {
	o := suite.Options{Runs: 3, Duration: 5 * time.Second, ThroughputConns: 4, ConnRateWorkers: 8, PingPongConns: []int{1, 32}, IdleCounts: []int{3000}}
	three := func(v float64) []float64 { return []float64{v * 0.98, v, v * 1.03} }
	vals := func(m map[string]float64) map[string][]float64 {
		out := map[string][]float64{}
		for k, v := range m {
			out[k] = three(v)
		}
		return out
	}
	res := &suite.Result{Options: o, Rows: suite.Rows(o), Start: time.Unix(0, 0), End: time.Unix(495, 0), Peers: []*suite.PeerResult{
		{Name: "direct", Describe: "no proxy", Errors: map[string]load.ErrorCounts{}, Values: vals(map[string]float64{
			"throughput.gbps": 75, "connrate.per_s": 15000,
			"pingpong1.per_s": 14000, "pingpong1.p50_us": 70, "pingpong1.p90_us": 110, "pingpong1.p99_us": 160, "pingpong1.p999_us": 450,
			"pingpong32.per_s": 190000, "pingpong32.p50_us": 120, "pingpong32.p90_us": 250, "pingpong32.p99_us": 700, "pingpong32.p999_us": 4600,
			"idle3000.held": 3000,
		})},
		{Name: "balance-l4", Describe: "this", Errors: map[string]load.ErrorCounts{}, Values: vals(map[string]float64{
			"throughput.cpu_ms_per_gb": 55.7, "throughput.gbps": 60.3, "connrate.cpu_us_per_conn": 38.1, "connrate.per_s": 14600,
			"pingpong1.cpu_us_per_req": 13.1, "pingpong1.per_s": 9700, "pingpong1.p50_us": 94, "pingpong1.p90_us": 183, "pingpong1.p99_us": 253, "pingpong1.p999_us": 514,
			"pingpong32.cpu_us_per_req": 7.0, "pingpong32.per_s": 115600, "pingpong32.p50_us": 367, "pingpong32.p90_us": 651, "pingpong32.p99_us": 1022, "pingpong32.p999_us": 2769,
			"idle3000.rss_per_conn": 7000, "idle3000.fds_per_conn": 2, "idle3000.held": 3000,
		})},
		{Name: "haproxy-2t", Describe: "HAProxy", Errors: map[string]load.ErrorCounts{}, Values: vals(map[string]float64{
			"throughput.cpu_ms_per_gb": 53.2, "throughput.gbps": 65.6, "connrate.cpu_us_per_conn": 33.1, "connrate.per_s": 14700,
			"pingpong1.cpu_us_per_req": 14.6, "pingpong1.per_s": 9200, "pingpong1.p50_us": 95, "pingpong1.p90_us": 200, "pingpong1.p99_us": 259, "pingpong1.p999_us": 569,
			"pingpong32.cpu_us_per_req": 7.7, "pingpong32.per_s": 125400, "pingpong32.p50_us": 375, "pingpong32.p90_us": 668, "pingpong32.p99_us": 824, "pingpong32.p999_us": 2245,
			"idle3000.rss_per_conn": 3400, "idle3000.fds_per_conn": 2, "idle3000.held": 3000,
		})},
		{Name: "nginx", Describe: "nginx", Errors: map[string]load.ErrorCounts{}, Values: vals(map[string]float64{
			"throughput.cpu_ms_per_gb": 198, "throughput.gbps": 40.8, "connrate.cpu_us_per_conn": 26.8, "connrate.per_s": 14800,
			"pingpong1.cpu_us_per_req": 11.9, "pingpong1.per_s": 10263, "pingpong1.p50_us": 90, "pingpong1.p90_us": 177, "pingpong1.p99_us": 247, "pingpong1.p999_us": 489,
			"pingpong32.cpu_us_per_req": 5.8, "pingpong32.per_s": 141700, "pingpong32.p50_us": 350, "pingpong32.p90_us": 627, "pingpong32.p99_us": 773, "pingpong32.p999_us": 1909,
			"idle3000.rss_per_conn": 9900, "idle3000.fds_per_conn": 2, "idle3000.held": 3000,
		})},
		{Name: "go-proxy", Describe: "obvious", Errors: map[string]load.ErrorCounts{}, Values: vals(map[string]float64{
			"throughput.cpu_ms_per_gb": 250, "throughput.gbps": 18.4,
			"pingpong1.cpu_us_per_req": 61.3, "pingpong1.per_s": 7214, "pingpong1.p50_us": 134, "pingpong1.p90_us": 214, "pingpong1.p99_us": 293, "pingpong1.p999_us": 545,
			"pingpong32.cpu_us_per_req": 11.8, "pingpong32.per_s": 69550, "pingpong32.p50_us": 428, "pingpong32.p90_us": 684, "pingpong32.p99_us": 1188, "pingpong32.p999_us": 3129,
			"idle3000.rss_per_conn": 16253, "idle3000.fds_per_conn": 6, "idle3000.held": 3000,
		}), Failures: []string{"connrate run 1: no connection completed", "connrate run 2: no connection completed", "connrate run 3: no connection completed"}},
		{Name: "go-eventloop", Absent: "not in this run"},
	}}
	return Report{
		Machine: Machine{Date: time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC), Command: "go run ./bench/cmd/l4bench -runs 3 -out BENCHMARKS.md", Go: "go1.26", Cores: 2},
		Suite:   res,
	}
}

func TestMarkdownRatiosToNginxAndTheBestPeer(t *testing.T) {
	r := synthetic()
	r.ChartLink = "bench/chart.svg"
	md := r.Markdown()
	for _, want := range []string{
		"### At a glance\n\n![Every figure per peer, each median divided by haproxy-2t's](bench/chart.svg)\n",
		"| figure | direct | balance-l4 | haproxy-2t | nginx | go-proxy | go-eventloop | best |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
		// Costs: ratios to HAProxy and nginx, lowest wins.
		"| proxy CPU per GB, ms | – | 56 (1.05 h2, 0.28 ng) | **53** (0.27 ng) | 198 (3.72 h2) | 250 (4.70 h2, 1.26 ng) | absent | haproxy-2t |\n" +
			"| throughput (4 conns), Gbit/s | 75.0 | 60.3 (0.80 d, 0.92 h2, 1.48 ng) | **65.6** (0.87 d, 1.61 ng) | 40.8 (0.54 d, 0.62 h2) | 18.4 (0.25 d, 0.28 h2, 0.45 ng) | absent | haproxy-2t |\n" +
			"| proxy CPU per connection, µs | – | 38.1 (1.15 h2, 1.42 ng) | 33.1 (1.24 ng) | **26.8** (0.81 h2) | failed | absent | nginx |\n" +
			"| connections/s (8 workers) | 15 000 | 14 600 (0.97 d, 0.99 h2, 0.99 ng) | 14 700 (0.98 d, 0.99 ng) | **14 800** (0.99 d, 1.01 h2) | failed | absent | nginx |\n",
		// Latencies: lowest wins.
		"| 32 conns ping-pong, p99 µs | 700 | 1 022 (1.46 d, 1.24 h2, 1.32 ng) | 824 (1.18 d, 1.07 ng) | **773** (1.10 d, 0.94 h2) | 1 188 (1.70 d, 1.44 h2, 1.54 ng) | absent | nginx |\n",
		// Equal at the precision shown: the place is shared.
		"| idle 3000: fds per connection | – | **2.0** (1.00 h2, 1.00 ng) | **2.0** (1.00 ng) | **2.0** (1.00 h2) | 6.0 (3.00 h2, 3.00 ng) | absent | balance-l4, haproxy-2t, nginx |\n",
		"| idle 3000: connections held | 3 000 | 3 000 | 3 000 | 3 000 | 3 000 | absent | – |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q; got:\n%s", want, md)
		}
	}
	// Within each load, the cost rows lead.
	for _, pair := range [][2]string{
		{"| proxy CPU per GB, ms |", "| throughput (4 conns), Gbit/s |"},
		{"| proxy CPU per connection, µs |", "| connections/s (8 workers) |"},
		{"| 1 conn ping-pong, proxy CPU per request, µs |", "| 1 conn ping-pong, req/s |"},
		{"| idle 3000: RSS per connection, bytes |", "| idle 3000: connections held |"},
	} {
		if i, j := strings.Index(md, pair[0]), strings.Index(md, pair[1]); i < 0 || j < 0 || i > j {
			t.Errorf("%q does not come before %q", pair[0], pair[1])
		}
	}
}

func TestBest(t *testing.T) {
	peers := func(vs ...float64) []*suite.PeerResult {
		ps := []*suite.PeerResult{{Name: "direct", Values: map[string][]float64{"k": {1}}}}
		for i, v := range vs {
			ps = append(ps, &suite.PeerResult{Name: string(rune('a' + i)), Values: map[string][]float64{"k": {v}}})
		}
		return ps
	}
	absent := append(peers(5, 9), &suite.PeerResult{Name: "z", Absent: "not installed"})
	tests := []struct {
		name  string
		kind  suite.Kind
		dig   int
		peers []*suite.PeerResult
		want  []string
	}{
		{"rate: highest", suite.Rate, 0, peers(5, 9, 7), []string{"b"}},
		{"latency: lowest", suite.Latency, 0, peers(5, 9, 7), []string{"a"}},
		{"cost: lowest, direct does not compete", suite.Cost, 0, peers(5, 9, 7), []string{"a"}},
		{"equal as shown share", suite.Cost, 1, peers(2.01, 2.04, 2.2), []string{"a", "b"}},
		{"different at more digits", suite.Cost, 2, peers(2.01, 2.04, 2.2), []string{"a"}},
		{"all equal: nobody", suite.Cost, 1, peers(2, 2, 2), nil},
		{"one proxy: nobody", suite.Rate, 0, peers(5), nil},
		{"counts: nobody", suite.Count, 0, peers(5, 9), nil},
		{"absent peers do not count", suite.Rate, 0, absent, []string{"b"}},
	}
	for _, tt := range tests {
		got := Best(suite.Row{Key: "k", Kind: tt.kind, Digits: tt.dig}, tt.peers)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Best = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// svgTexts parses svg as XML and returns the root element's name and the
// content of every <text>, in order.
func svgTexts(t *testing.T, svg []byte) (root string, texts []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	depth, inText := 0, false
	var cur strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = tok.Name.Space + " " + tok.Name.Local
			}
			depth++
			if tok.Name.Local == "text" {
				inText = true
				cur.Reset()
			}
		case xml.EndElement:
			depth--
			if tok.Name.Local == "text" {
				inText = false
				texts = append(texts, cur.String())
			}
		case xml.CharData:
			if inText {
				cur.Write(tok)
			}
		}
	}
	if depth != 0 {
		t.Fatalf("chart ends at depth %d", depth)
	}
	return root, texts
}

func TestChartShowsEveryFigureAndPeer(t *testing.T) {
	r := synthetic()
	svg := r.Chart()
	if !bytes.Equal(svg, r.Chart()) {
		t.Fatal("two charts of one report differ")
	}
	root, texts := svgTexts(t, svg)
	if root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root element %q, want svg in the SVG namespace", root)
	}
	var figures []string
	for _, row := range r.Suite.Rows {
		if row.Kind != suite.Count {
			figures = append(figures, row.Label)
		}
	}
	for _, f := range figures {
		if !slices.Contains(texts, f) {
			t.Errorf("chart has no panel titled %q", f)
		}
	}
	if n := strings.Count(string(svg), "<g>"); n != len(figures) {
		t.Errorf("chart has %d panels, want %d", n, len(figures))
	}
	// Every peer is named in every panel, the best one starred.
	for _, p := range r.Suite.Peers {
		n := 0
		for _, s := range texts {
			if s == p.Name || s == "★ "+p.Name {
				n++
			}
		}
		if n != len(figures) {
			t.Errorf("peer %s is named in %d panels, want %d", p.Name, n, len(figures))
		}
	}
	for _, want := range []string{
		"less is better · 1.0 = haproxy-2t (33.1)", // proxy CPU per connection
		"more is better · 1.0 = haproxy-2t (65.6)", // throughput
		"★ nginx", "★ haproxy-2t",
		"0.81 · 26.8",      // nginx's CPU per connection, to HAProxy's
		"» 4.70 · 250",     // go-proxy's CPU per GB: off the 3.0 scale
		"– (no proxy)",     // direct's costs
		"failed", "absent", // go-proxy's connection rate, go-eventloop
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("chart has no text %q; texts: %q", want, texts)
		}
	}
}

// TestChartReferenceWithoutHAProxy: with no HAProxy 2 threads, each panel is
// drawn against its best proxy and says so.
func TestChartReferenceWithoutHAProxy(t *testing.T) {
	r := synthetic()
	r.Suite.Peers = slices.DeleteFunc(r.Suite.Peers, func(p *suite.PeerResult) bool { return p.Name == "haproxy-2t" })
	_, texts := svgTexts(t, r.Chart())
	for _, want := range []string{
		"less is better · 1.0 = nginx (26.8)",    // proxy CPU per connection: nginx is best
		"less is better · 1.0 = balance-l4 (56)", // proxy CPU per GB
		"1.00 · 26.8",
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("chart has no text %q; texts: %q", want, texts)
		}
	}
}

func TestChartOfNothingIsValid(t *testing.T) {
	if root, _ := svgTexts(t, Report{}.Chart()); root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root %q", root)
	}
}

// TestChartGolden pins the chart's bytes for the synthetic report; after an
// intended change, rerun with -update and look at the file.
func TestChartGolden(t *testing.T) {
	got := synthetic().Chart()
	path := filepath.Join("testdata", "chart.golden.svg")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestChartGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("chart differs from %s (rerun with -update if intended); got:\n%s", path, got)
	}
}
