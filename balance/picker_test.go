package balance

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var algorithms = []string{RoundRobin, LeastConnections, RandomTwo, SourceHash}

func TestNewRejectsBadInput(t *testing.T) {
	members, _ := fakes(1, 1)
	_, err := New("weighted_random", members, nil)
	if !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("New(weighted_random) error = %v, want ErrUnknownAlgorithm", err)
	}
	if !strings.Contains(err.Error(), `"weighted_random"`) || !strings.Contains(err.Error(), "least_connections") {
		t.Errorf("error %q should name the bad algorithm and the known ones", err)
	}
	for _, alg := range algorithms {
		if _, err := New(alg, []Member{members[0], nil}, nil); err == nil || !strings.Contains(err.Error(), "member 1 is nil") {
			t.Errorf("New(%s) with a nil member: error = %v, want one naming member 1", alg, err)
		}
	}
}

func TestPickCommonRules(t *testing.T) {
	key := []byte{192, 0, 2, 7}
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			t.Run("no members", func(t *testing.T) {
				p, err := New(alg, nil, seededRand(1))
				if err != nil {
					t.Fatal(err)
				}
				if got := p.Pick(key, nil); got != -1 {
					t.Fatalf("Pick over no members = %d, want -1", got)
				}
			})
			t.Run("all ineligible", func(t *testing.T) {
				members, fs := fakes(1, 2, 3)
				for _, f := range fs {
					f.ineligible.Store(true)
				}
				p, err := New(alg, members, seededRand(1))
				if err != nil {
					t.Fatal(err)
				}
				for range 10 {
					if got := p.Pick(key, nil); got != -1 {
						t.Fatalf("Pick = %d, want -1", got)
					}
				}
			})
			t.Run("weight 0 and bad weights never chosen", func(t *testing.T) {
				members, _ := fakes(0, 1, -1, nan(), inf(), 0)
				p, err := New(alg, members, seededRand(1))
				if err != nil {
					t.Fatal(err)
				}
				for k := range 200 {
					if got := p.Pick([]byte{10, 0, byte(k >> 8), byte(k)}, nil); got != 1 {
						t.Fatalf("Pick = %d, want 1 (the only positive finite weight)", got)
					}
				}
			})
			t.Run("ineligible and skipped never chosen", func(t *testing.T) {
				members, fs := fakes(1, 1, 1, 1, 1)
				fs[1].ineligible.Store(true)
				var skip Tried
				skip.Add(3)
				p, err := New(alg, members, seededRand(1))
				if err != nil {
					t.Fatal(err)
				}
				seen := map[int]int{}
				for k := range 300 {
					seen[p.Pick([]byte{10, 1, byte(k >> 8), byte(k)}, &skip)]++
				}
				if seen[1] > 0 || seen[3] > 0 || seen[-1] > 0 {
					t.Fatalf("picks %v: chose ineligible 1, skipped 3 or none", seen)
				}
				if seen[0] == 0 || seen[2] == 0 || seen[4] == 0 {
					t.Fatalf("picks %v: every usable member should get some of 300 picks", seen)
				}
			})
			t.Run("everything skipped", func(t *testing.T) {
				members, _ := fakes(1, 1, 1)
				var skip Tried
				for i := range members {
					skip.Add(i)
				}
				p, err := New(alg, members, seededRand(1))
				if err != nil {
					t.Fatal(err)
				}
				if got := p.Pick(key, &skip); got != -1 {
					t.Fatalf("Pick with every member skipped = %d, want -1", got)
				}
			})
			t.Run("member past 64 in skip", func(t *testing.T) {
				weights := make([]float64, 130)
				weights[100], weights[129] = 1, 1
				members, _ := fakes(weights...)
				var skip Tried
				skip.Add(100)
				p, err := New(alg, members, seededRand(1))
				if err != nil {
					t.Fatal(err)
				}
				for k := range 50 {
					if got := p.Pick([]byte{10, 2, 0, byte(k)}, &skip); got != 129 {
						t.Fatalf("Pick = %d, want 129", got)
					}
				}
			})
		})
	}
}

// TestPickAllocatesNothing holds every algorithm to zero allocations per pick,
// with some members ineligible and some skipped.
func TestPickAllocatesNothing(t *testing.T) {
	for _, alg := range algorithms {
		for _, n := range []int{3, 100} {
			weights := make([]float64, n)
			for i := range weights {
				weights[i] = float64(1 + i%3)
			}
			members, fs := fakes(weights...)
			fs[0].ineligible.Store(true)
			p, err := New(alg, members, seededRand(1))
			if err != nil {
				t.Fatal(err)
			}
			var skip Tried
			skip.Add(1)
			key := []byte{198, 51, 100, 1}
			allocs := testing.AllocsPerRun(1000, func() {
				key[3]++
				if p.Pick(key, &skip) < 0 {
					panic("no pick")
				}
			})
			if allocs != 0 {
				t.Errorf("%s over %d members: %.1f allocs per Pick, want 0", alg, n, allocs)
			}
		}
	}
}

// TestPickConcurrent runs picks from several goroutines while members flip
// eligibility and load; the race detector checks the synchronisation, and every
// pick must still be a member that was usable at some point.
func TestPickConcurrent(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			members, fs := fakes(3, 1, 2, 1)
			fs[3].ineligible.Store(true) // never usable
			p, err := New(alg, members, seededRand(7))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			bad := make(chan int, 4)
			for g := range 4 {
				wg.Go(func() {
					for k := range 2000 {
						i := p.Pick([]byte{10, byte(g), byte(k >> 8), byte(k)}, nil)
						if i == 3 {
							bad <- i
							return
						}
						if i >= 0 {
							fs[i].active.Add(1)
							fs[i].active.Add(-1)
						}
					}
				})
			}
			wg.Go(func() {
				for k := range 500 {
					fs[1].ineligible.Store(k%2 == 0)
					fs[2].setWeight(float64(1 + k%4))
				}
			})
			wg.Wait()
			close(bad)
			if i, ok := <-bad; ok {
				t.Fatalf("picked member %d, which is never eligible", i)
			}
		})
	}
}

func TestTried(t *testing.T) {
	var nilSet *Tried
	if nilSet.Has(0) || nilSet.Len() != 0 {
		t.Fatal("a nil *Tried must be empty")
	}
	var s Tried
	for _, i := range []int{0, 5, 63, 64, 127, 128, 1000} {
		if s.Has(i) {
			t.Fatalf("empty set has %d", i)
		}
		s.Add(i)
		if !s.Has(i) {
			t.Fatalf("after Add(%d), Has(%d) = false", i, i)
		}
	}
	s.Add(5) // twice
	s.Add(-1)
	if s.Has(-1) || s.Has(1) || s.Has(65) || s.Has(999) || s.Has(5000) {
		t.Fatal("Has reports an index never added")
	}
	if got := s.Len(); got != 7 {
		t.Fatalf("Len = %d, want 7", got)
	}
	s.Reset()
	if s.Len() != 0 || s.Has(0) || s.Has(1000) {
		t.Fatal("Reset left members behind")
	}
	s.Add(700) // reuses the grown words
	if !s.Has(700) || s.Len() != 1 {
		t.Fatal("Add after Reset")
	}
}

func TestTriedAllocatesNothingBelow64(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		var s Tried
		for i := range 64 {
			s.Add(i)
			if !s.Has(i) {
				panic("lost an index")
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs for indexes below 64, want 0", allocs)
	}
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }
