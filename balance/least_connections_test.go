package balance

import (
	"math"
	"testing"
)

func TestLeastConnectionsLowestLoadPerWeight(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		active  []int64
		want    int
	}{
		{name: "fewest active, equal weights", weights: []float64{1, 1, 1}, active: []int64{4, 2, 3}, want: 1},
		{name: "weight divides the load", weights: []float64{1, 2, 1}, active: []int64{3, 4, 5}, want: 1},                // 3, 2, 5
		{name: "heavy member carries more", weights: []float64{10, 1}, active: []int64{9, 1}, want: 0},                   // 0.9 < 1
		{name: "fractional slow-start weight", weights: []float64{0.25, 1}, active: []int64{1, 3}, want: 1},              // 4 > 3
		{name: "negative count is read as 0", weights: []float64{1, 1}, active: []int64{1, -5}, want: 1},                 // 1 > 0
		{name: "least loaded ineligible is passed over", weights: []float64{1, 1, 0}, active: []int64{5, 6, 0}, want: 0}, // weight 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members, fs := fakes(tt.weights...)
			for i, a := range tt.active {
				fs[i].active.Store(a)
			}
			p, err := New(LeastConnections, members, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 * len(members) { // every rotation of the start offset
				if got := p.Pick(nil, nil); got != tt.want {
					t.Fatalf("Pick = %d, want %d", got, tt.want)
				}
			}
		})
	}
}

// TestLeastConnectionsTiesRotate: idle members take turns rather than the first
// one taking every connection.
func TestLeastConnectionsTiesRotate(t *testing.T) {
	members, fs := fakes(1, 1, 1, 1)
	fs[3].active.Store(1) // not tied
	p, err := New(LeastConnections, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 4)
	for range 300 {
		counts[p.Pick(nil, nil)]++
	}
	for i, c := range counts[:3] {
		if c != 100 {
			t.Fatalf("counts %v: tied member %d got %d of 300, want 100 (rotation)", counts, i, c)
		}
	}
	if counts[3] != 0 {
		t.Fatalf("counts %v: loaded member chosen over idle ones", counts)
	}
}

// TestLeastConnectionsHoldsLoadInWeightRatio: when connections stay open, the
// active counts settle in the weights' ratio.
func TestLeastConnectionsHoldsLoadInWeightRatio(t *testing.T) {
	weights := []float64{1, 2, 5}
	members, fs := fakes(weights...)
	p, err := New(LeastConnections, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 800 {
		fs[p.Pick(nil, nil)].active.Add(1)
	}
	for i, w := range weights {
		want := 800 * w / 8
		if got := float64(fs[i].active.Load()); math.Abs(got-want) > 1 {
			t.Fatalf("member %d (weight %v) holds %v connections, want %v±1", i, w, got, want)
		}
	}
}
