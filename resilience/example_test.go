package resilience_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/balancel4/balance-l4/resilience"
)

// A breaker in front of a backend that fails twice, then recovers.
func ExampleBreaker() {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b := resilience.NewBreaker(resilience.BreakerSettings{
		MaxFailures: 2,
		OpenTimeout: 30 * time.Second,
		Now:         func() time.Time { return now },
		OnStateChange: func(from, to resilience.BreakerState, reason string) {
			fmt.Printf("%s -> %s: %s\n", from, to, reason)
		},
	})
	dial := func(ok bool) {
		attempt, err := b.Allow()
		if err != nil {
			fmt.Println("refused:", errors.Is(err, resilience.ErrOpen))
			return
		}
		b.Done(attempt, ok)
	}
	dial(false)
	dial(false)
	dial(true)
	now = now.Add(30 * time.Second)
	dial(true)
	fmt.Println(b.State())
	// Output:
	// closed -> open: 2 consecutive failures
	// refused: true
	// open -> half_open: open timeout elapsed
	// half_open -> closed: trial succeeded
	// closed
}

func ExampleBackoff_Delay() {
	b := resilience.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for n := range 6 {
		fmt.Print(b.Delay(n), " ")
	}
	// Output: 100ms 200ms 400ms 800ms 1s 1s
}
