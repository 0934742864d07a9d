package balance

import (
	"strings"
	"sync"
	"testing"
)

// letters runs n picks and spells them a, b, c, ... ("-" for none).
func letters(p Picker, skip *Tried, n int) string {
	var b strings.Builder
	for range n {
		if i := p.Pick(nil, skip); i < 0 {
			b.WriteByte('-')
		} else {
			b.WriteByte(byte('a' + i))
		}
	}
	return b.String()
}

func TestSmoothWRRSequence(t *testing.T) {
	tests := []struct {
		name       string
		weights    []float64
		ineligible []int
		skip       []int
		want       string
	}{
		{name: "5:1:1", weights: []float64{5, 1, 1}, want: "aabacaa" + "aabacaa"},
		{name: "3:1", weights: []float64{3, 1}, want: "aaba" + "aaba"},
		{name: "equal", weights: []float64{1, 1, 1}, want: "abcabc"},
		{name: "fractional 1.5:0.5 is 3:1", weights: []float64{1.5, 0.5}, want: "aaba" + "aaba"},
		{name: "fractional 0.2:0.1", weights: []float64{0.2, 0.1}, want: "aba" + "aba"},
		{name: "zero weight", weights: []float64{0, 2, 1}, want: "bcb" + "bcb"},
		{name: "ineligible b leaves a 5:1 c", weights: []float64{5, 1, 1}, ineligible: []int{1}, want: "aaacaa" + "aaacaa"},
		{name: "skipped a", weights: []float64{5, 1, 1}, skip: []int{0}, want: "bcbc"},
		{name: "nothing usable", weights: []float64{1, 1}, ineligible: []int{0, 1}, want: "---"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members, fs := fakes(tt.weights...)
			for _, i := range tt.ineligible {
				fs[i].ineligible.Store(true)
			}
			var skip Tried
			for _, i := range tt.skip {
				skip.Add(i)
			}
			p, err := New(RoundRobin, members, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := letters(p, &skip, len(tt.want)); got != tt.want {
				t.Fatalf("sequence %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSmoothWRRIneligibleDoesNotCorrupt checks that a member leaving and coming
// back in the middle of a cycle leaves the others' sequence intact, and that the
// full cycle resumes once it is back.
func TestSmoothWRRIneligibleDoesNotCorrupt(t *testing.T) {
	members, fs := fakes(5, 1, 1)
	p, err := New(RoundRobin, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := letters(p, nil, 3); got != "aab" {
		t.Fatalf("first picks %q, want aab", got)
	}
	fs[2].ineligible.Store(true)
	got := letters(p, nil, 12)
	if strings.Contains(got, "c") {
		t.Fatalf("ineligible c picked: %q", got)
	}
	if a, b := strings.Count(got, "a"), strings.Count(got, "b"); a != 10 || b != 2 {
		t.Fatalf("without c, 12 picks %q gave a=%d b=%d, want 5:1 (10, 2)", got, a, b)
	}
	fs[2].ineligible.Store(false)
	got = letters(p, nil, 70)
	if a, b, c := strings.Count(got, "a"), strings.Count(got, "b"), strings.Count(got, "c"); a != 50 || b != 10 || c != 10 {
		t.Fatalf("after c came back, 70 picks gave a=%d b=%d c=%d, want 50 10 10", a, b, c)
	}
	// Smooth: every window of one cycle (7 picks) holds exactly 5 a, 1 b, 1 c.
	for k := 0; k+7 <= len(got); k++ {
		w := got[k : k+7]
		if strings.Count(w, "a") != 5 || strings.Count(w, "b") != 1 {
			t.Fatalf("window %q at %d of %q is not 5:1:1", w, k, got)
		}
	}
}

// TestSmoothWRRConcurrentCountsExact: each pick is atomic, so any interleaving of
// 4 goroutines still splits 7k picks exactly 5k:1k:1k.
func TestSmoothWRRConcurrentCountsExact(t *testing.T) {
	members, _ := fakes(5, 1, 1)
	p, err := New(RoundRobin, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	counts := make([]int, 3)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			local := make([]int, 3)
			for range 700 {
				local[p.Pick(nil, nil)]++
			}
			mu.Lock()
			for i, c := range local {
				counts[i] += c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[0] != 2000 || counts[1] != 400 || counts[2] != 400 {
		t.Fatalf("counts %v, want [2000 400 400]", counts)
	}
}
