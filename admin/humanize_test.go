package admin

import (
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 10 << 20: "10.0 MiB",
		118 << 30: "118 GiB", 5 << 40: "5.00 TiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHumanCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1204880: "1,204,880", -12345: "-12,345"} {
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 500 * time.Millisecond: "0s", 45 * time.Second: "45s", 3*time.Minute + 12*time.Second: "3m 12s",
		time.Hour: "1h", 2*time.Hour + 5*time.Minute + 9*time.Second: "2h 5m", 9*24*time.Hour + 4*time.Hour: "9d 4h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestHumanMillis(t *testing.T) {
	for ms, want := range map[float64]string{0.42: "0.4 ms", 12.4: "12 ms", 3000: "3.00 s"} {
		if got := humanMillis(ms); got != want {
			t.Errorf("humanMillis(%v) = %q, want %q", ms, got, want)
		}
	}
}
