package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/bench/internal/child"
	"github.com/balancel4/balance-l4/bench/internal/report"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	child.ExitIfChild()
	goleak.VerifyTestMain(m)
}

// TestQuickRun keeps the tool working: the quick mode against direct and the Go
// proxy, end to end, writing a report into an existing file.
func TestQuickRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(out, []byte("# Mine\n"+report.Begin+"\nold\n"+report.End+"\n## Analysis\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-quick", "-idle", "300", "-peers", "direct,go-proxy", "-control-plane=false", "-out", out}, &stdout, &stderr, child.TestSpawner())
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	if !strings.HasPrefix(md, "# Mine\n"+report.Begin) || !strings.HasSuffix(md, report.End+"\n## Analysis\n") || strings.Contains(md, "\nold\n") {
		t.Fatalf("report did not replace just its block:\n%s", md)
	}
	if stdout.String() != md[len("# Mine\n"):len(md)-len("## Analysis\n")] {
		t.Fatalf("stdout differs from the block written:\n%s", stdout.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`\| figure \| direct \| go-proxy \|`),
		regexp.MustCompile(`\| throughput \(4 conns\), Gbit/s \| [0-9.]+ \| [0-9.]+ \([0-9.]+ d\) \|`),
		regexp.MustCompile(`\| connections/s \(8 workers\) \| [0-9 ]+ \| [0-9 ]+ \([0-9.]+ d\) \|`),
		regexp.MustCompile(`\| proxy CPU per connection, µs \| – \| [0-9. ]+ \| – \|\n\| connections/s`),
		regexp.MustCompile(`\| 32 conns ping-pong, p99 µs \| [0-9 ]+ \| [0-9 ]+ \([0-9.]+ d\) \|`),
		regexp.MustCompile(`\| idle 300: connections held \| 300 \| 300 \|`),
		regexp.MustCompile(`\| idle 300: fds per connection \| – \| [0-9.]+ \|`),
		regexp.MustCompile(`- none: every connection of every load succeeded`),
		regexp.MustCompile("command: `go run ./bench/cmd/l4bench -quick -idle 300 -peers direct,go-proxy -control-plane=false -out "),
		regexp.MustCompile(`\n!\[[^]]+\]\(bench/chart\.svg\)\n`),
	} {
		if !want.MatchString(md) {
			t.Errorf("report lacks %v:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(filepath.Dir(out), "bench", "chart.svg"))
	if err != nil {
		t.Fatalf("-out wrote no chart next to the report: %v", err)
	}
	if err := xml.Unmarshal(svg, new(struct {
		XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
	})); err != nil {
		t.Fatalf("chart is not an SVG document: %v\n%s", err, svg)
	}
	for _, want := range []string{">direct</text>", ">go-proxy</text>", ">proxy CPU per connection, µs</text>"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

func TestChartLocation(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "charts", "c.svg")
	tests := []struct {
		out, chart, path, link string
	}{
		{"BENCHMARKS.md", "bench/chart.svg", "bench/chart.svg", "bench/chart.svg"},
		{"/tmp/x/B.md", "bench/chart.svg", "/tmp/x/bench/chart.svg", "bench/chart.svg"},
		{"docs/B.md", "../bench/chart.svg", "bench/chart.svg", "../bench/chart.svg"},
		{filepath.Join(filepath.Dir(abs), "B.md"), abs, abs, "c.svg"},
	}
	for _, tt := range tests {
		path, link := chartLocation(tt.out, tt.chart)
		if path != tt.path || link != tt.link {
			t.Errorf("chartLocation(%q, %q) = %q, %q; want %q, %q", tt.out, tt.chart, path, link, tt.path, tt.link)
		}
	}
}

// TestNoChartFlag: -chart "" turns the chart off; by default it is bench/chart.svg.
func TestNoChartFlag(t *testing.T) {
	f, err := parseFlags([]string{"-chart", ""}, &bytes.Buffer{})
	if err != nil || f.chart != "" {
		t.Fatalf("-chart \"\" = %q, %v; want no chart", f.chart, err)
	}
	if f, _ := parseFlags(nil, &bytes.Buffer{}); f.chart != report.ChartFile {
		t.Fatalf("default -chart = %q, want %q", f.chart, report.ChartFile)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-peers", "squid"},
		{"-peers", ","},
		{"-idle", "0"},
		{"-idle", "many"},
		{"-loads", "bulk"},
		{"-loads", ""},
		{"-runs"},
		{"-nonsense"},
		{"extra"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, &bytes.Buffer{}, &stderr, child.TestSpawner()); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (usage); stderr %q", args, code, stderr.String())
		}
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"-runs", "3", "-out", "my file.md"})
	if want := `go run ./bench/cmd/l4bench -runs 3 -out "my file.md"`; got != want {
		t.Fatalf("commandLine = %q, want %q", got, want)
	}
}
