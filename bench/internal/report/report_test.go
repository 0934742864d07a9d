package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/controlplane"
	"github.com/balancel4/balance-l4/bench/internal/load"
	"github.com/balancel4/balance-l4/bench/internal/suite"
)

func TestNumber(t *testing.T) {
	tests := []struct {
		v      float64
		digits int
		want   string
	}{
		{0, 0, "0"},
		{999.4, 0, "999"},
		{12100, 0, "12 100"},
		{1234567.6, 0, "1 234 568"},
		{-4321, 0, "-4 321"},
		{15.55, 1, "15.6"},
		{2.345, 2, "2.35"},
	}
	for _, tt := range tests {
		if got := Number(tt.v, tt.digits); got != tt.want {
			t.Errorf("Number(%v, %d) = %q, want %q", tt.v, tt.digits, got, tt.want)
		}
	}
}

func TestSplice(t *testing.T) {
	block := Begin + "\nnew\n" + End + "\n"
	tests := []struct {
		name, old, want string
	}{
		{"empty file", "", "# H\n" + block},
		{"no markers", "notes\n", "# H\n" + block},
		{"markers kept around", "# Mine\nintro\n" + Begin + "\nold\n" + End + "\nanalysis\n", "# Mine\nintro\n" + block + "analysis\n"},
		{"end before begin", End + "\n" + Begin, "# H\n" + block},
	}
	for _, tt := range tests {
		if got := Splice(tt.old, block, "# H\n"); got != tt.want {
			t.Errorf("%s: Splice = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestWriteFileKeepsTextOutsideTheBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := WriteFile(path, Begin+"\none\n"+End+"\n", "# Bench\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(b, "## Analysis\nkept\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, Begin+"\ntwo\n"+End+"\n", "# Bench\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Bench\n" + Begin + "\ntwo\n" + End + "\n## Analysis\nkept\n"
	if string(got) != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
}

func TestMarkdown(t *testing.T) {
	o := suite.Options{Runs: 3, Duration: 5 * time.Second, ThroughputConns: 4, ConnRateWorkers: 8, PingPongConns: []int{1}, IdleCounts: []int{3000}}
	res := &suite.Result{Options: o, Rows: suite.Rows(o), Start: time.Unix(0, 0), End: time.Unix(100, 0), Peers: []*suite.PeerResult{
		{Name: "direct", Describe: "no proxy", Values: map[string][]float64{
			"throughput.gbps": {30, 28, 32}, "connrate.per_s": {12000, 12100, 12200},
		}, Errors: map[string]load.ErrorCounts{}},
		{Name: "haproxy-2t", Describe: "HAProxy", Values: map[string][]float64{
			"throughput.gbps": {16, 15, 17}, "throughput.cpu_ms_per_gb": {240, 230, 250},
		}, Errors: map[string]load.ErrorCounts{}},
		{Name: "go-proxy", Describe: "obvious", Values: map[string][]float64{
			"throughput.gbps": {15, 16, 14}, "throughput.cpu_ms_per_gb": {480, 470, 490},
		}, Errors: map[string]load.ErrorCounts{"idle3000": {load.KindTimeout: 32}},
			Failures: []string{"connrate run 2: no connection completed"}},
		{Name: "nginx", Absent: "peer: absent: nginx is not installed"},
	}}
	md := Report{
		Machine:   Machine{Date: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Command: "l4bench -runs 3", Go: "go1.26", Cores: 2},
		Suite:     res,
		Health:    &controlplane.HealthResult{Backends: 10000, Interval: time.Second, Window: 10 * time.Second, CPUShare: 0.42, ChecksPerSecond: 9950},
		Dashboard: &controlplane.DashboardResult{Backends: 1000, Requests: 20, Median: 12 * time.Millisecond, Bytes: 250_000},
	}.Markdown()

	for _, want := range []string{
		Begin, End,
		"command: `l4bench -runs 3`",
		"| figure | direct | haproxy-2t | go-proxy | nginx | best |",
		"| proxy CPU per GB, ms | – | **240** | 480 (2.00 h2) | absent | haproxy-2t |\n| throughput (4 conns), Gbit/s | 30.0 | **16.0** (0.53 d) | 15.0 (0.50 d, 0.94 h2) | absent | haproxy-2t |\n",
		"| connections/s (8 workers) | 12 100 | – | failed | absent | – |",
		"| figure | direct | haproxy-2t | go-proxy | nginx |\n",
		"| throughput (4 conns), Gbit/s | 28.0 – 32.0 | 15.0 – 17.0 | 14.0 – 16.0 | absent |",
		"- go-proxy, idle3000: timeout 32 (over all runs)",
		"- go-proxy failed: connrate run 2: no connection completed",
		"- nginx absent: peer: absent: nginx is not installed",
		"CPU over 10s | 42 % of one core |",
		"checks per second | 9 950 (configured 10 000) |",
		"| dashboard with 1 000 backends: GET / median / p90 / max of 20 | 12.0 ms / 0.0 ms / 0.0 ms, 250 KB |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q; got:\n%s", want, md)
		}
	}
	if strings.Contains(md, "At a glance") || strings.Contains(md, "![") {
		t.Errorf("Markdown links a chart although none was written:\n%s", md)
	}
}
