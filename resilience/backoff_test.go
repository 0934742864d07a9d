package resilience

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

const ms = time.Millisecond

// constRand returns a Rand that always yields f.
func constRand(f float64) func() float64 { return func() float64 { return f } }

// justBelowOne is the largest float64 below 1, the top of Rand's range.
var justBelowOne = math.Nextafter(1, 0)

func delays(b Backoff, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.Delay(i)
	}
	return out
}

func TestBackoffSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Backoff
		want []time.Duration
	}{
		{
			name: "doubling capped at 1s",
			b:    Backoff{Initial: 100 * ms, Max: time.Second, Multiplier: 2},
			want: []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second},
		},
		{
			name: "defaults: 100ms doubling to 10s",
			b:    Backoff{},
			want: []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second},
		},
		{
			name: "multiplier below 1 means 2",
			b:    Backoff{Initial: 10 * ms, Max: time.Second, Multiplier: 0.5},
			want: []time.Duration{10 * ms, 20 * ms, 40 * ms},
		},
		{
			name: "multiplier 1 is constant",
			b:    Backoff{Initial: 30 * ms, Multiplier: 1},
			want: []time.Duration{30 * ms, 30 * ms, 30 * ms},
		},
		{
			name: "multiplier 1.5",
			b:    Backoff{Initial: 100 * ms, Max: time.Second, Multiplier: 1.5},
			want: []time.Duration{100 * ms, 150 * ms, 225 * ms, 337500 * time.Microsecond},
		},
		{
			name: "max below initial caps at max",
			b:    Backoff{Initial: time.Second, Max: 300 * ms},
			want: []time.Duration{300 * ms, 300 * ms},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := delays(tc.b, len(tc.want)); !slices.Equal(got, tc.want) {
				t.Fatalf("delays = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	b := Backoff{Initial: 100 * ms, Max: time.Second, Multiplier: 2, Jitter: 0.1}
	for _, tc := range []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"lowest factor", 0, []time.Duration{90 * ms, 180 * ms, 360 * ms, 720 * ms, 900 * ms}},
		{"middle factor", 0.5, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second}},
		// The top factor is just under 1.1; at the cap, jitter never exceeds Max.
		{"highest factor", justBelowOne, []time.Duration{110*ms - 1, 220*ms - 1, 440*ms - 1, 880*ms - 1, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.Rand = constRand(tc.rand)
			got := delays(b, len(tc.want))
			for i := range got { // float rounding may cost a nanosecond
				if d := got[i] - tc.want[i]; d < -1 || d > 1 {
					t.Fatalf("delays = %v, want %v (±1ns)", got, tc.want)
				}
			}
			if got[len(got)-1] > b.Max {
				t.Fatalf("delay %v exceeds Max %v", got[len(got)-1], b.Max)
			}
		})
	}
}

func TestBackoffFullJitterAndBadInput(t *testing.T) {
	b := Backoff{Initial: 100 * ms, Jitter: 1, Rand: constRand(0)}
	if got := b.Delay(3); got != 0 {
		t.Fatalf("jitter 1 with Rand 0: delay %v, want 0", got)
	}
	for _, tc := range []struct {
		name string
		b    Backoff
		n    int
		want time.Duration
	}{
		{"negative n counts as 0", Backoff{Initial: 50 * ms}, -3, 50 * ms},
		{"huge n is capped, not overflowed", Backoff{}, 100000, DefaultBackoffMax},
		{"negative durations take defaults", Backoff{Initial: -1, Max: -1}, 0, DefaultBackoffInitial},
		{"NaN multiplier means 2", Backoff{Multiplier: math.NaN()}, 1, 200 * ms},
		{"jitter above 1 is clamped", Backoff{Jitter: 5, Rand: constRand(0)}, 0, 0},
		{"NaN jitter is none", Backoff{Jitter: math.NaN(), Rand: constRand(0)}, 0, 100 * ms},
		{"Rand out of range is clamped", Backoff{Jitter: 0.5, Rand: constRand(7)}, 0, 150 * ms},
		{"NaN Rand counts as 0", Backoff{Jitter: 0.5, Rand: constRand(math.NaN())}, 0, 50 * ms},
	} {
		if got := tc.b.Delay(tc.n); got != tc.want {
			t.Errorf("%s: Delay(%d) = %v, want %v", tc.name, tc.n, got, tc.want)
		}
	}
}

func TestBackoffDefaultRandStaysInBounds(t *testing.T) {
	b := Backoff{Initial: 100 * ms, Max: time.Second, Jitter: 0.2}
	for range 1000 {
		if d := b.Delay(1); d < 160*ms || d > 240*ms {
			t.Fatalf("Delay(1) with jitter 0.2 = %v, want within [160ms, 240ms]", d)
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	valid := []Backoff{{}, {Initial: ms, Max: time.Second, Multiplier: 3, Jitter: 1}, {Multiplier: 0.5}}
	for _, b := range valid {
		if err := b.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", b, err)
		}
	}
	invalid := []Backoff{
		{Initial: -ms},
		{Max: -ms},
		{Initial: time.Second, Max: ms},
		{Multiplier: math.NaN()},
		{Multiplier: math.Inf(1)},
		{Jitter: -0.1},
		{Jitter: 1.5},
		{Jitter: math.NaN()},
	}
	for _, b := range invalid {
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", b)
		}
	}
}

func TestBackoffDelayAllocs(t *testing.T) {
	for _, b := range []Backoff{{Jitter: 0.1}, {Jitter: 0.1, Rand: constRand(0.3)}, {}} {
		if n := testing.AllocsPerRun(1000, func() { b.Delay(4) }); n != 0 {
			t.Errorf("Delay with %+v allocates %v times, want 0", b, n)
		}
	}
}

func TestSleep(t *testing.T) {
	t.Run("waits the whole delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if err := Sleep(t.Context(), 5*time.Second); err != nil {
				t.Fatalf("Sleep: %v", err)
			}
			if got := time.Since(start); got != 5*time.Second {
				t.Fatalf("Sleep(5s) returned after %v of bubble time", got)
			}
		})
	})
	t.Run("returns when cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(2*time.Second, cancel)
			start := time.Now()
			if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
				t.Fatalf("Sleep cancelled: err = %v, want context.Canceled", err)
			}
			if got := time.Since(start); got != 2*time.Second {
				t.Fatalf("cancelled Sleep returned after %v of bubble time, want 2s", got)
			}
		})
	})
	t.Run("deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := Sleep(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Sleep past deadline: err = %v, want context.DeadlineExceeded", err)
			}
		})
	})
	t.Run("no delay", func(t *testing.T) {
		if err := Sleep(t.Context(), 0); err != nil {
			t.Fatalf("Sleep(0) = %v, want nil", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := Sleep(ctx, -time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep(-1s) on a cancelled context = %v, want context.Canceled", err)
		}
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep(1h) on a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func BenchmarkBackoffDelay(b *testing.B) {
	bo := Backoff{Jitter: 0.1}
	for i := 0; b.Loop(); i++ {
		bo.Delay(i & 7)
	}
}
