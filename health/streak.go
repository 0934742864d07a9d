package health

// Default thresholds (SPEC §2 [health_check]).
const (
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
)

// Streak is the rise/fall rule of active checks with no clock and no network:
// the verdict turns unhealthy after UnhealthyThreshold failures in a row while
// healthy, and healthy after HealthyThreshold successes in a row while
// unhealthy. A result that agrees with the verdict only extends its streak.
//
// With thresholds 2 (healthy) and 3 (unhealthy), starting healthy:
//
//	result:  fail fail ok  fail fail fail ok  ok
//	verdict: H    H    H   H    H    U    U   H
//
// The zero Streak is healthy with the default thresholds.
type Streak struct {
	unhealthy           bool // inverted so that the zero value is healthy
	successes, failures int
	healthyThreshold    int
	unhealthyThreshold  int
}

// NewStreak returns a healthy Streak; a threshold < 1 means its default.
func NewStreak(healthyThreshold, unhealthyThreshold int) Streak {
	var s Streak
	s.SetThresholds(healthyThreshold, unhealthyThreshold)
	return s
}

// Record adds one result and reports whether the verdict flipped.
func (s *Streak) Record(ok bool) (changed bool) {
	if ok {
		s.successes++
		s.failures = 0
		if s.unhealthy && s.successes >= s.rise() {
			s.unhealthy = false
			return true
		}
		return false
	}
	s.failures++
	s.successes = 0
	if !s.unhealthy && s.failures >= s.fall() {
		s.unhealthy = true
		return true
	}
	return false
}

// Force sets the verdict from outside the checks (a passive verdict, or a
// breaker timeout) and resets the streak that would have to undo it: forcing
// unhealthy zeroes the successes, forcing healthy zeroes the failures.
func (s *Streak) Force(healthy bool) (changed bool) {
	changed = s.unhealthy == healthy
	s.unhealthy = !healthy
	if healthy {
		s.failures = 0
	} else {
		s.successes = 0
	}
	return changed
}

// SetThresholds changes the thresholds and keeps the current streaks; the new
// thresholds apply from the next Record. A threshold < 1 means its default.
func (s *Streak) SetThresholds(healthy, unhealthy int) {
	s.healthyThreshold, s.unhealthyThreshold = healthy, unhealthy
}

// Healthy is the verdict.
func (s *Streak) Healthy() bool { return !s.unhealthy }

// Successes and Failures are the current streaks; at most one is non-zero.
func (s *Streak) Successes() int { return s.successes }
func (s *Streak) Failures() int  { return s.failures }

// Thresholds returns the effective thresholds, defaults applied.
func (s *Streak) Thresholds() (healthy, unhealthy int) { return s.rise(), s.fall() }

func (s *Streak) rise() int {
	if s.healthyThreshold < 1 {
		return DefaultHealthyThreshold
	}
	return s.healthyThreshold
}

func (s *Streak) fall() int {
	if s.unhealthyThreshold < 1 {
		return DefaultUnhealthyThreshold
	}
	return s.unhealthyThreshold
}
