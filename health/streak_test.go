package health

import (
	"strings"
	"testing"
)

// TestStreakTransitions walks every transition of the rise/fall rule: each
// row feeds a fresh, healthy Streak a sequence of results and lists the
// verdict after each one, in upper case where Record reported a flip.
func TestStreakTransitions(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		results    string // o ok, x failed
		want       string // verdict after each result: h/u unchanged, H/U just flipped
	}{
		{"healthy stays healthy on successes", 2, 3, "ooo", "hhh"},
		{"failures below threshold keep healthy", 2, 3, "xx", "hh"},
		{"third failure flips to unhealthy", 2, 3, "xxx", "hhU"},
		{"more failures stay unhealthy", 2, 3, "xxxxx", "hhUuu"},
		{"success breaks a failure streak", 2, 3, "xxoxx", "hhhhh"},
		{"one success is not enough to rise", 2, 3, "xxxo", "hhUu"},
		{"second success rises", 2, 3, "xxxoo", "hhUuH"},
		{"failure breaks a success streak", 2, 3, "xxxoxoo", "hhUuuuH"},
		{"fall again after rising", 2, 3, "xxxooxxx", "hhUuHhhU"},
		{"thresholds of one flip on every change", 1, 1, "xoxxoo", "UHUuHh"},
		{"zero thresholds mean the defaults", 0, 0, "xxxoo", "hhUuH"},
		{"negative thresholds mean the defaults", -1, -5, "xxxoo", "hhUuH"},
		{"large rise", 5, 1, "xooooo", "UuuuuH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStreak(tt.rise, tt.fall)
			var got strings.Builder
			for _, r := range tt.results {
				changed := s.Record(r == 'o')
				c := 'h'
				if !s.Healthy() {
					c = 'u'
				}
				if changed {
					c -= 'a' - 'A'
				}
				got.WriteRune(c)
			}
			if got.String() != tt.want {
				t.Errorf("results %s: verdicts %s, want %s", tt.results, got.String(), tt.want)
			}
		})
	}
}

func TestStreakCounts(t *testing.T) {
	s := NewStreak(2, 3)
	for range 4 {
		s.Record(false)
	}
	if s.Failures() != 4 || s.Successes() != 0 {
		t.Fatalf("after 4 failures: successes %d failures %d", s.Successes(), s.Failures())
	}
	s.Record(true)
	if s.Failures() != 0 || s.Successes() != 1 {
		t.Fatalf("after a success: successes %d failures %d", s.Successes(), s.Failures())
	}
}

func TestStreakForce(t *testing.T) {
	s := NewStreak(2, 3)
	s.Record(true)
	if !s.Force(false) || s.Healthy() || s.Successes() != 0 {
		t.Fatalf("Force(false) from healthy: healthy %v successes %d", s.Healthy(), s.Successes())
	}
	if s.Force(false) {
		t.Fatal("Force(false) when unhealthy reported a change")
	}
	s.Record(false)
	s.Record(false)
	if !s.Force(true) || !s.Healthy() || s.Failures() != 0 {
		t.Fatalf("Force(true) from unhealthy: healthy %v failures %d", s.Healthy(), s.Failures())
	}
	// The failure streak was reset: it takes a full run of failures again.
	if s.Record(false) || s.Record(false) || !s.Record(false) {
		t.Fatal("after Force(true), the third failure should flip, not earlier")
	}
}

func TestStreakSetThresholdsKeepsStreaks(t *testing.T) {
	s := NewStreak(2, 3)
	s.Record(false)
	s.Record(false)
	s.SetThresholds(2, 5)
	if s.Failures() != 2 {
		t.Fatalf("failures %d after SetThresholds, want 2 kept", s.Failures())
	}
	if s.Record(false) || s.Record(false) {
		t.Fatal("flipped before the new threshold of 5")
	}
	if !s.Record(false) {
		t.Fatal("fifth failure should flip with threshold 5")
	}
	s.SetThresholds(0, 0)
	if rise, fall := s.Thresholds(); rise != 2 || fall != 3 {
		t.Fatalf("thresholds %d/%d after SetThresholds(0, 0), want defaults 2/3", rise, fall)
	}
}

func TestStreakZeroValueIsHealthyWithDefaults(t *testing.T) {
	var s Streak
	if !s.Healthy() {
		t.Fatal("zero Streak is unhealthy")
	}
	if rise, fall := s.Thresholds(); rise != DefaultHealthyThreshold || fall != DefaultUnhealthyThreshold {
		t.Fatalf("zero Streak thresholds %d/%d", rise, fall)
	}
}
