package resilience

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// withdrawAll takes retries until the budget refuses one, at most limit, and
// returns how many it granted.
func withdrawAll(b *Budget, limit int) int {
	n := 0
	for n < limit && b.Withdraw() {
		n++
	}
	return n
}

func deposit(b *Budget, n int) {
	for range n {
		b.Deposit()
	}
}

func TestBudgetFloorWithoutDeposits(t *testing.T) {
	for _, perSecond := range []int{0, 1, 10} {
		t.Run(fmt.Sprint(perSecond), func(t *testing.T) {
			clock := newFakeClock()
			b := NewBudget(0.2, perSecond, clock.Now)
			if got, want := withdrawAll(b, 1000), perSecond*10; got != want {
				t.Fatalf("retries granted with no deposits = %d, want %d", got, want)
			}
			want := BudgetStats{Retries: int64(perSecond * 10), Exhausted: 1}
			if got := b.Stats(); got != want {
				t.Fatalf("stats = %+v, want %+v", got, want)
			}
		})
	}
}

func TestBudgetRatio(t *testing.T) {
	for _, tc := range []struct {
		ratio     float64
		floor     int
		deposits  int
		wantGrant int
	}{
		{ratio: 0.2, deposits: 10, wantGrant: 2},
		{ratio: 0.2, deposits: 14, wantGrant: 2},
		{ratio: 0.2, deposits: 15, wantGrant: 3},
		{ratio: 0.29, deposits: 100, wantGrant: 29}, // 0.29 × 100 is 28.999… in float64
		{ratio: 1, deposits: 7, wantGrant: 7},
		{ratio: 0, deposits: 1000, wantGrant: 0},
		{ratio: 0.5, floor: 1, deposits: 4, wantGrant: 12},
	} {
		t.Run(fmt.Sprintf("%v×%d+%d", tc.ratio, tc.deposits, tc.floor), func(t *testing.T) {
			clock := newFakeClock()
			b := NewBudget(tc.ratio, tc.floor, clock.Now)
			deposit(b, tc.deposits)
			if got := withdrawAll(b, 10000); got != tc.wantGrant {
				t.Fatalf("retries granted = %d, want %d", got, tc.wantGrant)
			}
		})
	}
}

func TestBudgetDepositsRefill(t *testing.T) {
	clock := newFakeClock()
	b := NewBudget(0.2, 0, clock.Now)
	deposit(b, 10)
	if got := withdrawAll(b, 100); got != 2 {
		t.Fatalf("granted %d, want 2", got)
	}
	deposit(b, 5) // 15 deposits allow 3 retries: one more
	if got := withdrawAll(b, 100); got != 1 {
		t.Fatalf("granted %d after 5 more deposits, want 1", got)
	}
	if got, want := b.Stats(), (BudgetStats{Deposits: 15, Retries: 3, Exhausted: 2}); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

func TestBudgetWindowExpiry(t *testing.T) {
	t.Run("retries leave the window", func(t *testing.T) {
		clock := newFakeClock()
		b := NewBudget(0, 1, clock.Now)
		if got := withdrawAll(b, 100); got != 10 {
			t.Fatalf("granted %d, want 10", got)
		}
		clock.Advance(10*time.Second - time.Nanosecond) // second 9: second 0 still counts
		if b.Withdraw() {
			t.Fatal("retry granted while the first second's retries are in the window")
		}
		clock.Advance(time.Nanosecond) // second 10: second 0 left
		if got := withdrawAll(b, 100); got != 10 {
			t.Fatalf("granted %d after the window moved, want 10", got)
		}
	})
	t.Run("deposits leave the window", func(t *testing.T) {
		clock := newFakeClock()
		b := NewBudget(0.5, 0, clock.Now)
		deposit(b, 10) // second 0
		clock.Advance(5 * time.Second)
		if got := withdrawAll(b, 100); got != 5 { // second 5
			t.Fatalf("granted %d, want 5", got)
		}
		clock.Advance(5 * time.Second) // second 10: the deposits left, the retries did not
		deposit(b, 4)
		if got := withdrawAll(b, 100); got != 0 {
			t.Fatalf("granted %d with 4 deposits against 5 retries in the window, want 0", got)
		}
		clock.Advance(5 * time.Second) // second 15: the retries left too
		if got := withdrawAll(b, 100); got != 2 {
			t.Fatalf("granted %d with 4 deposits in the window, want 2", got)
		}
	})
	t.Run("long idle clears everything", func(t *testing.T) {
		clock := newFakeClock()
		b := NewBudget(0.5, 0, clock.Now)
		deposit(b, 10)
		withdrawAll(b, 3)
		clock.Advance(time.Hour)
		if b.Withdraw() {
			t.Fatal("retry granted after an hour without deposits")
		}
		deposit(b, 2)
		if got := withdrawAll(b, 100); got != 1 {
			t.Fatalf("granted %d, want 1", got)
		}
	})
	t.Run("clock going back keeps counting", func(t *testing.T) {
		clock := newFakeClock()
		b := NewBudget(0.5, 0, clock.Now)
		clock.Advance(3 * time.Second)
		deposit(b, 2)
		clock.Advance(-5 * time.Second)
		deposit(b, 2)
		if got := withdrawAll(b, 100); got != 2 {
			t.Fatalf("granted %d, want 2", got)
		}
	})
}

func TestBudgetDefaultClock(t *testing.T) {
	b := NewBudget(0.5, 1, nil)
	deposit(b, 4)
	if got := withdrawAll(b, 100); got != 12 {
		t.Fatalf("granted %d with the default clock, want 12", got)
	}
}

func TestNilBudgetAllows(t *testing.T) {
	var b *Budget
	b.Deposit()
	for i := range 100 {
		if !b.Withdraw() {
			t.Fatalf("nil budget refused retry %d", i)
		}
	}
	if got := b.Stats(); got != (BudgetStats{}) {
		t.Fatalf("nil budget stats = %+v, want zero", got)
	}
}

func TestNewBudgetRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		floor int
	}{
		{-0.1, 0}, {1.1, 0}, {math.NaN(), 0}, {0.5, -1}, {0.5, math.MaxInt64 / 10},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewBudget(%v, %d) did not panic", tc.ratio, tc.floor)
				}
			}()
			NewBudget(tc.ratio, tc.floor, nil)
		}()
	}
}

func TestBudgetConcurrent(t *testing.T) {
	const workers, rounds = 4, 1000
	clock := newFakeClock()
	b := NewBudget(0.5, 0, clock.Now)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				b.Deposit()
				b.Withdraw()
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	if st.Deposits != workers*rounds || st.Retries+st.Exhausted != workers*rounds {
		t.Fatalf("stats = %+v after %d deposits and withdrawals", st, workers*rounds)
	}
	if st.Retries != workers*rounds/2 {
		t.Fatalf("retries granted = %d, want half of %d deposits", st.Retries, workers*rounds)
	}
}

func TestBudgetAllocs(t *testing.T) {
	clock := newFakeClock()
	b := NewBudget(0.2, 10, clock.Now)
	if n := testing.AllocsPerRun(1000, func() {
		b.Deposit()
		b.Withdraw()
	}); n != 0 {
		t.Errorf("Deposit+Withdraw allocate %v times, want 0", n)
	}
}

func BenchmarkBudget(b *testing.B) {
	bu := NewBudget(0.2, 10, nil)
	for b.Loop() {
		bu.Deposit()
		bu.Withdraw()
	}
}

func BenchmarkBudgetParallel(b *testing.B) {
	bu := NewBudget(0.2, 10, nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bu.Deposit()
			bu.Withdraw()
		}
	})
}
