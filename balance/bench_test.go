package balance

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkPick measures one pick per algorithm and pool size, every member
// eligible, weights 1..3 and some load, serial and from all Ps at once.
func BenchmarkPick(b *testing.B) {
	for _, alg := range algorithms {
		for _, n := range []int{3, 100, 1000} {
			weights := make([]float64, n)
			for i := range weights {
				weights[i] = float64(1 + i%3)
			}
			members, fs := fakes(weights...)
			for i, f := range fs {
				f.active.Store(int64(i % 7))
			}
			p, err := New(alg, members, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%d", alg, n), func(b *testing.B) {
				b.ReportAllocs()
				key := []byte{10, 0, 0, 0}
				for i := 0; b.Loop(); i++ {
					key[2], key[3] = byte(i>>8), byte(i)
					if p.Pick(key, nil) < 0 {
						b.Fatal("no pick")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%d/parallel", alg, n), func(b *testing.B) {
				b.ReportAllocs()
				var worker atomic.Uint32
				b.RunParallel(func(pb *testing.PB) {
					key := []byte{10, byte(worker.Add(1)), 0, 0}
					for i := 0; pb.Next(); i++ {
						key[2], key[3] = byte(i>>8), byte(i)
						if p.Pick(key, nil) < 0 {
							panic("no pick")
						}
					}
				})
			})
		}
	}
}

func BenchmarkNewSourceHash(b *testing.B) {
	for _, n := range []int{3, 100, 1000} {
		members, _ := fakes(make1s(n)...)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				newSourceHash(members)
			}
		})
	}
}

func make1s(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	return w
}
