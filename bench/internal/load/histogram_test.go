package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	prevHi := uint64(0)
	for i := 1; i < buckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d], previous ended at %d", i, lo, hi, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d] but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 2*subCount && float64(hi-lo+1)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/%d of its values", i, lo, hi, subCount)
		}
		prevHi = hi
	}
	if prevHi != ^uint64(0) {
		t.Fatalf("last bucket ends at %d, want the largest uint64", prevHi)
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatalf("empty Quantile = %v, want 0", h.Quantile(0.5))
	}
	// 1..100 µs: the p-th percentile is p µs, within a bucket's width.
	for i := 100; i >= 1; i-- {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, 1 * time.Microsecond},
		{0.01, 1 * time.Microsecond},
		{0.5, 50 * time.Microsecond},
		{0.9, 90 * time.Microsecond},
		{0.99, 99 * time.Microsecond},
		{0.999, 100 * time.Microsecond},
		{1, 100 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if diff := float64(got-tt.want) / float64(tt.want); diff > 1.0/subCount || diff < -1.0/subCount {
			t.Errorf("Quantile(%v) = %v, want %v within 1/%d", tt.q, got, tt.want, subCount)
		}
	}
	if h.Count() != 100 || h.Max() != 100*time.Microsecond {
		t.Fatalf("Count, Max = %d, %v; want 100, 100µs", h.Count(), h.Max())
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{-5, 0, 3, 127} {
		h.Record(v)
	}
	if got := h.Quantile(0.25); got != 0 {
		t.Errorf("Quantile(0.25) = %v, want 0 (negative counts as zero)", got)
	}
	if got := h.Quantile(0.75); got != 3 {
		t.Errorf("Quantile(0.75) = %v, want 3ns", got)
	}
	if got := h.Quantile(1); got != 127 {
		t.Errorf("Quantile(1) = %v, want 127ns", got)
	}
}

func TestMergeMatchesOneHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all, a, b Histogram
	var samples []time.Duration
	for i := range 10_000 {
		v := time.Duration(rng.ExpFloat64() * float64(200*time.Microsecond))
		samples = append(samples, v)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatal("merged histogram differs from one fed every value")
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := samples[int(q*float64(len(samples))+0.999999)-1]
		got := all.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 1.0/subCount || diff < -1.0/subCount {
			t.Errorf("Quantile(%v) = %v, exact %v: off by more than 1/%d", q, got, exact, subCount)
		}
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Record(1234 * time.Nanosecond) }); n != 0 {
		t.Fatalf("Record allocates %v times, want 0", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i & 0xfffff))
	}
}
