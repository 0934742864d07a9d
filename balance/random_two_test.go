package balance

import (
	"math"
	"testing"
)

// draws is a scripted rnd: it returns its values in order, then panics.
type draws struct {
	values []uint64
}

func (d *draws) next() uint64 {
	if len(d.values) == 0 {
		panic("scripted rnd ran out of values")
	}
	v := d.values[0]
	d.values = d.values[1:]
	return v
}

// drawIndex is the rnd value whose high half selects index i of n and whose low
// half keeps the draw whatever the weight (rejection test 0 < w/bound).
func drawIndex(i, n int) uint64 {
	hi := (uint64(i)<<32 + 1<<31) / uint64(n)
	return hi << 32
}

func TestRandomTwoScripted(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		active  []int64
		draws   []int // member indexes the scripted rnd selects, in order
		want    int
	}{
		{name: "second sample less loaded", weights: []float64{1, 1, 1}, active: []int64{5, 0, 2}, draws: []int{0, 2}, want: 2},
		{name: "first sample less loaded", weights: []float64{1, 1, 1}, active: []int64{5, 0, 2}, draws: []int{1, 0}, want: 1},
		{name: "tie keeps the first sample", weights: []float64{1, 1, 1}, active: []int64{3, 3, 3}, draws: []int{2, 0}, want: 2},
		{name: "load is per weight", weights: []float64{4, 1, 1}, active: []int64{6, 2, 2}, draws: []int{1, 0}, want: 0}, // 1.5 < 2
		{name: "second draw of the first sample is redrawn", weights: []float64{1, 1, 1}, active: []int64{0, 9, 1}, draws: []int{1, 1, 1, 2}, want: 2},
		{name: "ineligible draw is redrawn", weights: []float64{1, 1, 0}, active: []int64{4, 3, 0}, draws: []int{2, 0, 2, 1}, want: 1},
		{name: "single usable member", weights: []float64{0, 1, 0}, active: []int64{0, 7, 0}, draws: []int{1, 0, 0, 0, 0, 0, 0, 0, 0}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members, fs := fakes(tt.weights...)
			for i, a := range tt.active {
				fs[i].active.Store(a)
			}
			d := &draws{}
			for _, i := range tt.draws {
				d.values = append(d.values, drawIndex(i, len(members)))
			}
			p, err := New(RandomTwo, members, d.next)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Pick(nil, nil); got != tt.want {
				t.Fatalf("Pick = %d, want %d", got, tt.want)
			}
			if len(d.values) != 0 {
				t.Fatalf("%d scripted draws left unused", len(d.values))
			}
		})
	}
}

// TestRandomTwoIdleSharesFollowWeights: with every load 0 each comparison ties
// and the first, weight-proportional sample wins, so shares follow weights.
func TestRandomTwoIdleSharesFollowWeights(t *testing.T) {
	tests := []struct {
		name       string
		weights    []float64
		ineligible []int
	}{
		{name: "3:1", weights: []float64{3, 1}},
		{name: "5:1:1", weights: []float64{5, 1, 1}},
		{name: "fractional", weights: []float64{0.5, 1.5, 2}},
		// 46 of 50 ineligible: most rejection draws fail, the exact draw takes over.
		{name: "exact fallback", weights: append([]float64{4, 1, 2, 1}, make([]float64, 46)...)},
		// The heavy member is down: bound starts at 100 and must come down.
		{name: "heavy member down", weights: []float64{100, 1, 3}, ineligible: []int{0}},
	}
	const picks = 40000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members, fs := fakes(tt.weights...)
			for _, i := range tt.ineligible {
				fs[i].ineligible.Store(true)
			}
			p, err := New(RandomTwo, members, seededRand(42))
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]int, len(members))
			for range picks {
				counts[p.Pick(nil, nil)]++
			}
			total := 0.0
			for i, w := range tt.weights {
				if !fs[i].ineligible.Load() {
					total += w
				}
			}
			for i, w := range tt.weights {
				want := 0.0
				if !fs[i].ineligible.Load() {
					want = w / total
				}
				if got := float64(counts[i]) / picks; math.Abs(got-want) > 0.01 {
					t.Errorf("member %d (weight %v): share %.4f, want %.4f±0.01", i, w, got, want)
				}
			}
		})
	}
}

// TestRandomTwoHoldsLoadInWeightRatio: with connections kept open, each member's
// load per weight stays close to the others'.
func TestRandomTwoHoldsLoadInWeightRatio(t *testing.T) {
	weights := []float64{1, 2, 5, 2}
	members, fs := fakes(weights...)
	p, err := New(RandomTwo, members, seededRand(3))
	if err != nil {
		t.Fatal(err)
	}
	const picks = 2000
	for range picks {
		fs[p.Pick(nil, nil)].active.Add(1)
	}
	for i, w := range weights {
		want := picks * w / 10
		if got := float64(fs[i].active.Load()); math.Abs(got-want) > 0.05*want+2 {
			t.Errorf("member %d (weight %v) holds %v connections, want %v±5%%", i, w, got, want)
		}
	}
}

// TestRandomTwoNeverPicksTheWorst: two distinct samples, so a member strictly
// more loaded than every other is never chosen.
func TestRandomTwoNeverPicksTheWorst(t *testing.T) {
	members, fs := fakes(1, 1, 1, 1)
	fs[0].active.Store(3)
	fs[1].active.Store(1)
	fs[2].active.Store(9) // the worst
	fs[3].active.Store(2)
	p, err := New(RandomTwo, members, seededRand(9))
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 4)
	for range 3000 {
		counts[p.Pick(nil, nil)]++
	}
	if counts[2] != 0 {
		t.Fatalf("counts %v: the most loaded member was chosen", counts)
	}
	// Member 1 wins every pair it is in (half of them); member 3 every pair but
	// those with 1 (a third); member 0 only the pair with 2 (a sixth).
	for i, want := range []float64{1.0 / 6, 1.0 / 2, 0, 1.0 / 3} {
		if got := float64(counts[i]) / 3000; math.Abs(got-want) > 0.03 {
			t.Errorf("member %d: share %.3f, want %.3f", i, got, want)
		}
	}
}

// TestRandomTwoWeightRisingPastBound: a member whose weight grows after the
// picker was built (slow start ending) gets its full share.
func TestRandomTwoWeightRisingPastBound(t *testing.T) {
	members, fs := fakes(0.1, 1)
	p, err := New(RandomTwo, members, seededRand(5))
	if err != nil {
		t.Fatal(err)
	}
	fs[0].setWeight(4)
	counts := make([]int, 2)
	for range 20000 {
		counts[p.Pick(nil, nil)]++
	}
	if got := float64(counts[0]) / 20000; math.Abs(got-0.8) > 0.01 {
		t.Fatalf("member at weight 4 of 5: share %.4f, want 0.8", got)
	}
}
