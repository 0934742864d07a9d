package suite

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/child"
	"github.com/balancel4/balance-l4/bench/internal/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	child.ExitIfChild()
	goleak.VerifyTestMain(m)
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{[]float64{7}, 7, true},
		{[]float64{9, 1, 5}, 5, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
	}
	for _, tt := range tests {
		got, ok := Median(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Median(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	err := Options{Runs: -1, Duration: time.Millisecond, PingPongConns: []int{0}, IdleCounts: []int{-3}}.Validate()
	if err == nil {
		t.Fatal("bad Options validated")
	}
	for _, want := range []string{"runs -1", "duration 1ms", "ping-pong connections 0", "idle connections -3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not name %q", err, want)
		}
	}
}

// absentPeer is a peer that is not installed.
type absentPeer struct{ peer.Peer }

func (absentPeer) Name() string     { return "nothing" }
func (absentPeer) Describe() string { return "not installed" }
func (absentPeer) Absent() error    { return errors.New("not installed here") }

// TestRunInterleavesPeers runs every figure, briefly, against direct and the Go
// proxy in front of real backend processes.
func TestRunInterleavesPeers(t *testing.T) {
	dir := t.TempDir()
	be, err := peer.StartBackends(context.Background(), child.TestSpawner(), dir, "backends", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Stop()
	env := peer.Env{Dir: dir, Spawn: child.TestSpawner(), Backends: be.Addrs}
	var peers []peer.Peer
	for _, name := range []string{peer.Direct, peer.GoProxy} {
		p, err := peer.New(name, env)
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	peers = append(peers, absentPeer{})

	var log strings.Builder
	o := Options{Runs: 2, Duration: 150 * time.Millisecond, PingPongConns: []int{1, 4}, IdleCounts: []int{40}, Settle: 10 * time.Millisecond, Log: &log}
	r, err := Run(context.Background(), o, peers)
	if err != nil {
		t.Fatal(err)
	}

	if a := r.Peer("nothing"); a == nil || a.Absent != "not installed here" {
		t.Fatalf("absent peer result = %+v, want it reported absent", a)
	}
	for _, name := range []string{peer.Direct, peer.GoProxy} {
		pr := r.Peer(name)
		if len(pr.Failures) > 0 {
			t.Fatalf("%s failures: %v\nlog:\n%s", name, pr.Failures, log.String())
		}
		for _, row := range r.Rows {
			n := len(pr.Values[row.Key])
			want := 2
			if row.Kind == Cost && name == peer.Direct {
				want = 0 // no proxy process to measure
			}
			if n != want {
				t.Errorf("%s %s: %d values, want %d", name, row.Key, n, want)
			}
		}
		if held, _ := pr.Median("idle40.held"); held != 40 {
			t.Errorf("%s held %v idle connections, want 40", name, held)
		}
	}
	if fds, _ := r.Peer(peer.GoProxy).Median("idle40.fds_per_conn"); fds < 2 {
		t.Errorf("Go proxy fds per idle connection = %v, want at least 2 (client and backend sockets)", fds)
	}

	// The log shows the order: within each figure, run 1 for every peer, then run 2.
	var order []string
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && f[1] == "run" {
			order = append(order, f[0]+" "+f[2]+" "+f[3])
		}
	}
	want := []string{
		"throughput 1 direct", "throughput 1 go-proxy", "throughput 2 direct", "throughput 2 go-proxy",
		"connrate 1 direct", "connrate 1 go-proxy",
	}
	if len(order) < len(want) {
		t.Fatalf("log order %q, want it to start with %q", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("log order %q, want it to start with %q", order, want)
		}
	}
}

func TestEveryRowHasItsFigure(t *testing.T) {
	o := Options{}.withDefaults()
	names := map[string]bool{}
	for _, f := range figures(o) {
		names[f.name] = true
	}
	for _, row := range Rows(o) {
		if !names[row.Figure()] {
			t.Errorf("row %s comes from figure %q, which is not run", row.Key, row.Figure())
		}
	}
}

func TestLoadsSelectFiguresAndRows(t *testing.T) {
	o := Options{Loads: []string{"connrate", "pingpong"}}.withDefaults()
	var names []string
	for _, f := range figures(o) {
		names = append(names, f.name)
	}
	if got := strings.Join(names, " "); got != "connrate pingpong1 pingpong32" {
		t.Fatalf("figures = %q, want connrate and the two ping-pongs", got)
	}
	for _, row := range Rows(o) {
		if f := row.Figure(); f != "connrate" && !strings.HasPrefix(f, "pingpong") {
			t.Errorf("row %s of an unselected load", row.Key)
		}
	}
	if err := (Options{Loads: []string{"bulk"}}).Validate(); err == nil || !strings.Contains(err.Error(), `load "bulk"`) {
		t.Fatalf("Validate(unknown load) = %v, want it named", err)
	}
	if err := (Options{Loads: []string{}}).Validate(); err == nil {
		t.Fatal("Validate(no load) succeeded, want an error")
	}
}

// TestCostsLeadEveryLoad keeps the order the report promises: within each
// load, every cost row comes before every rate, latency or count.
func TestCostsLeadEveryLoad(t *testing.T) {
	rows := Rows(Options{}.withDefaults())
	seenOther := map[string]string{} // figure -> first non-cost row
	costs := map[string]int{}
	for _, row := range rows {
		f := row.Figure()
		if row.Kind != Cost {
			if seenOther[f] == "" {
				seenOther[f] = row.Key
			}
			continue
		}
		costs[f]++
		if other := seenOther[f]; other != "" {
			t.Errorf("cost row %s comes after %s", row.Key, other)
		}
	}
	for _, f := range figures(Options{}.withDefaults()) {
		if costs[f.name] == 0 {
			t.Errorf("figure %s has no cost row to lead with", f.name)
		}
		if seenOther[f.name] == "" {
			t.Errorf("figure %s has no rate, latency or count row", f.name)
		}
	}
}

func TestStraceTotal(t *testing.T) {
	report := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 42.51    1.509844        4015       376        15 futex
  3.17    0.112721          20      5404           write
------ ----------- ----------- --------- --------- ------------------
100.00    3.558338          49     71545      5310 total
`
	if n, err := straceTotal(report); err != nil || n != 71545 {
		t.Fatalf("straceTotal = %d, %v; want 71545", n, err)
	}
	if _, err := straceTotal("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n"); err == nil {
		t.Fatal("a report without a total line was read")
	}
}
