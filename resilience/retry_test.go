package resilience

import "testing"

func TestRetryPolicyAllowRetry(t *testing.T) {
	clock := newFakeClock()
	for _, tc := range []struct {
		name   string
		policy RetryPolicy
		made   []int
		want   []bool
	}{
		{
			name:   "bounded by max attempts",
			policy: RetryPolicy{MaxAttempts: 3},
			made:   []int{0, 1, 2, 3, 4},
			want:   []bool{true, true, true, false, false},
		},
		{
			name:   "one attempt means no retry",
			policy: RetryPolicy{MaxAttempts: 1},
			made:   []int{0, 1},
			want:   []bool{true, false},
		},
		{
			name:   "zero max attempts counts as one",
			policy: RetryPolicy{},
			made:   []int{0, 1},
			want:   []bool{true, false},
		},
		{
			// Floor of 1/s is 10 retries per window; the first attempts cost none.
			name:   "bounded by the budget",
			policy: RetryPolicy{MaxAttempts: 100, Budget: NewBudget(0, 1, clock.Now)},
			made:   []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0},
			want:   []bool{true, true, true, true, true, true, true, true, true, true, true, false, true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, made := range tc.made {
				if got := tc.policy.AllowRetry(made); got != tc.want[i] {
					t.Fatalf("call %d: AllowRetry(%d) = %v, want %v", i, made, got, tc.want[i])
				}
			}
		})
	}
}

func TestRetryPolicyValidate(t *testing.T) {
	if err := (RetryPolicy{MaxAttempts: 3}).Validate(); err != nil {
		t.Errorf("Validate(valid) = %v, want nil", err)
	}
	for _, p := range []RetryPolicy{{MaxAttempts: 0}, {MaxAttempts: 2, Backoff: Backoff{Jitter: 2}}} {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", p)
		}
	}
}
