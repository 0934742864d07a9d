package load

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power-of-two range of values is cut
// into 2^subBits buckets, so a recorded value is known within 1/64 (1.6 %).
const (
	subBits  = 6
	subCount = 1 << subBits
	buckets  = (64 - subBits + 1) * subCount // exponents 0..57 above the exact range
)

// Histogram counts durations with bounded relative error in fixed memory, like
// HdrHistogram: values below 128 ns are exact, above that bucket width grows with
// magnitude. Recording is a few instructions and never allocates. The zero value
// is empty and ready; a Histogram is not safe for concurrent use (give each
// goroutine its own and Merge them).
type Histogram struct {
	counts [buckets]uint64
	total  uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	return (e+1)*subCount + int(v>>e) - subCount
}

// bucketRange is the lowest and highest value that land in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*subCount {
		return uint64(i), uint64(i)
	}
	e := i/subCount - 1
	m := uint64(i%subCount + subCount)
	return m << e, (m+1)<<e - 1
}

// Record counts one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.total++
	h.max = max(h.max, v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the value below or at which a share q (0..1) of the recorded
// values lie: the middle of the bucket holding the ceil(q*n)-th smallest value,
// never above Max. An empty histogram returns 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.999999999)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			return time.Duration(min(lo+(hi-lo)/2, h.max))
		}
	}
	return time.Duration(h.max)
}
