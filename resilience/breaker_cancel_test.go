package resilience

import (
	"errors"
	"testing"
	"time"
)

func TestCancelGivesBackTheTrialSlot(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBreaker(BreakerSettings{MaxFailures: 1, OpenTimeout: time.Second, HalfOpenMax: 1, Now: func() time.Time { return now }})
	a, _ := b.Allow()
	b.Done(a, false)
	now = now.Add(time.Second)
	trial, err := b.Allow()
	if err != nil || !trial.Trial() {
		t.Fatalf("want a half-open trial, got %v %v", trial, err)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyTrials) {
		t.Fatalf("second trial: %v, want ErrTooManyTrials", err)
	}
	b.Cancel(trial)
	if b.State() != HalfOpen {
		t.Fatalf("state %v after Cancel, want half_open", b.State())
	}
	again, err := b.Allow()
	if err != nil || !again.Trial() {
		t.Fatalf("after Cancel: %v %v, want a new trial", again, err)
	}
	b.Cancel(again)
	b.Cancel(again) // twice must not free a slot that was not taken
	x, _ := b.Allow()
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyTrials) {
		t.Fatalf("double Cancel freed an extra slot: %v", err)
	}
	b.Done(x, true)
	if b.State() != Closed {
		t.Fatalf("state %v, want closed", b.State())
	}
}

func TestCancelOfClosedAttemptKeepsTheStreak(t *testing.T) {
	b := NewBreaker(BreakerSettings{MaxFailures: 2})
	a, _ := b.Allow()
	b.Done(a, false)
	c, _ := b.Allow()
	b.Cancel(c)
	d, _ := b.Allow()
	b.Done(d, false)
	if b.State() != Open {
		t.Fatalf("state %v: a cancelled attempt must not reset the failure streak", b.State())
	}
}
