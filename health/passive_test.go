package health

import (
	"strings"
	"testing"
	"time"
)

func TestPassiveConsecutiveFailuresTrip(t *testing.T) {
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 3, Now: newFakeClock().Now})
	for i, ok := range []bool{false, false, true, false, false} {
		if trip, reason := p.Record(ok); trip {
			t.Fatalf("attempt %d tripped: %s", i, reason)
		}
	}
	trip, reason := p.Record(false)
	if !trip || reason != "3 consecutive connection failures" {
		t.Fatalf("third failure in a row: trip %v reason %q", trip, reason)
	}
	// Every further failure while crossed trips again, so a missed trip is
	// not lost; a success never trips.
	if trip, reason := p.Record(false); !trip || reason != "4 consecutive connection failures" {
		t.Fatalf("fourth failure: trip %v reason %q", trip, reason)
	}
	if trip, _ := p.Record(true); trip {
		t.Fatal("a success tripped")
	}
}

func TestPassiveDefaultConsecutiveFailures(t *testing.T) {
	p := NewPassive(PassiveSettings{Now: newFakeClock().Now})
	for i := range DefaultPassiveConsecutiveFailures - 1 {
		if trip, _ := p.Record(false); trip {
			t.Fatalf("failure %d tripped before the default of 5", i+1)
		}
	}
	if trip, _ := p.Record(false); !trip {
		t.Fatal("fifth failure did not trip")
	}
}

func TestPassiveErrorRateNeedsMinRequests(t *testing.T) {
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 100, ErrorRate: 0.5, MinRequests: 10, Now: newFakeClock().Now})
	// Alternate: 50% failures, but no verdict before 10 attempts.
	for i := range 9 {
		if trip, reason := p.Record(i%2 == 0); trip {
			t.Fatalf("attempt %d tripped below min_requests: %s", i+1, reason)
		}
	}
	// Tenth attempt, a failure: 5 of 10 failed.
	trip, reason := p.Record(false)
	if !trip || reason != "error rate 0.50 >= 0.50 over 10 attempts in 1m0s" {
		t.Fatalf("tenth attempt: trip %v reason %q", trip, reason)
	}
	if got := p.ErrorRate(); got != 0.5 {
		t.Fatalf("ErrorRate %v, want 0.5", got)
	}
}

func TestPassiveErrorRateBelowThresholdDoesNotTrip(t *testing.T) {
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 100, ErrorRate: 0.5, MinRequests: 6, Now: newFakeClock().Now})
	for i := range 30 {
		if trip, reason := p.Record(i%3 != 0); trip { // a third fail
			t.Fatalf("attempt %d tripped at rate %.2f: %s", i+1, p.ErrorRate(), reason)
		}
	}
}

func TestPassiveZeroErrorRateDisablesRateVerdict(t *testing.T) {
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 3, ErrorRate: 0, MinRequests: 1, Now: newFakeClock().Now})
	for i := range 20 {
		if trip, reason := p.Record(i%2 == 0); trip {
			t.Fatalf("attempt %d tripped with the rate verdict off: %s", i+1, reason)
		}
	}
}

func TestPassiveWindowExpires(t *testing.T) {
	clock := newFakeClock()
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 100, ErrorRate: 0.5, MinRequests: 4, Window: 10 * time.Second, Now: clock.Now})
	for range 3 {
		p.Record(false)
	}
	if rate := p.ErrorRate(); rate != 1 {
		t.Fatalf("ErrorRate %v after 3 failures, want 1", rate)
	}
	clock.Advance(5 * time.Second)
	p.Record(true) // 3 of 4 failed, but a success never trips
	if rate := p.ErrorRate(); rate != 0.75 {
		t.Fatalf("ErrorRate %v, want 0.75", rate)
	}
	// 10s later the first three failures have left the window; the success
	// from 5s ago is still in it.
	clock.Advance(6 * time.Second)
	if rate := p.ErrorRate(); rate != 0 {
		t.Fatalf("ErrorRate %v after the failures left the window, want 0", rate)
	}
	if trip, reason := p.Record(false); trip { // 1 of 2 failed: below min_requests
		t.Fatalf("tripped on old failures: %s", reason)
	}
	clock.Advance(time.Minute)
	if rate := p.ErrorRate(); rate != 0 {
		t.Fatalf("ErrorRate %v after a whole minute, want 0", rate)
	}
	// A window later still, the ring's old slices must not come back.
	for range 4 {
		clock.Advance(3 * time.Second)
		p.Record(true)
	}
	if rate := p.ErrorRate(); rate != 0 {
		t.Fatalf("ErrorRate %v with only successes in the window, want 0", rate)
	}
}

func TestPassiveWindowRateTripsAcrossBuckets(t *testing.T) {
	clock := newFakeClock()
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 100, ErrorRate: 0.6, MinRequests: 5, Window: time.Minute, Now: clock.Now})
	var trip bool
	var reason string
	for i := range 5 { // one attempt every 10s: fail, ok, fail, ok, fail = 0.6
		trip, reason = p.Record(i%2 == 1)
		clock.Advance(10 * time.Second)
	}
	if !trip || !strings.HasPrefix(reason, "error rate 0.60 >= 0.60 over 5 attempts") {
		t.Fatalf("trip %v reason %q", trip, reason)
	}
}

func TestPassiveReset(t *testing.T) {
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 2, ErrorRate: 0.5, MinRequests: 1, Now: newFakeClock().Now})
	p.Record(false)
	p.Reset()
	if p.ErrorRate() != 0 {
		t.Fatalf("ErrorRate %v after Reset", p.ErrorRate())
	}
	if trip, _ := p.Record(true); trip {
		t.Fatal("success tripped")
	}
	// One failure of two: the rate (0.5) trips, but not the reset streak.
	if trip, reason := p.Record(false); !trip || !strings.HasPrefix(reason, "error rate 0.50") {
		t.Fatalf("trip %v reason %q", trip, reason)
	}
}

func TestPassiveClockStepsBack(t *testing.T) {
	clock := newFakeClock()
	p := NewPassive(PassiveSettings{ConsecutiveFailures: 100, Now: clock.Now})
	clock.Advance(-time.Hour)
	p.Record(false)
	if rate := p.ErrorRate(); rate != 1 {
		t.Fatalf("ErrorRate %v after a failure with a clock stepped back, want 1", rate)
	}
}

func TestNilPassive(t *testing.T) {
	var p *Passive
	for range 10 {
		if trip, reason := p.Record(false); trip || reason != "" {
			t.Fatalf("nil Passive tripped: %q", reason)
		}
	}
	if p.ErrorRate() != 0 {
		t.Fatal("nil Passive has an error rate")
	}
	p.Reset()
}

func TestPassiveRecordDoesNotAllocate(t *testing.T) {
	p := NewPassive(PassiveSettings{ErrorRate: 0.9, MinRequests: 1000})
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		p.Record(i%3 != 0) // failures that do not trip
	})
	if allocs != 0 {
		t.Fatalf("Record allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkPassiveRecord(b *testing.B) {
	p := NewPassive(PassiveSettings{ErrorRate: 0.5, MinRequests: 10})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Record(true)
		}
	})
}
