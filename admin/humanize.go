package admin

import (
	"strconv"
	"time"
)

// humanBytes formats a byte count in IEC units with three significant digits:
// "512 B", "1.50 KiB", "118 GiB".
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + units[i:i+1] + "iB"
}

// humanCount groups digits by thousands: 1204880 -> "1,204,880".
func humanCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// humanDuration gives the two largest units: "45s", "3m 12s", "2h 5m", "9d 4h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case d < time.Second:
		return "0s"
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		return pair(s/60, "m", s%60, "s")
	case s < 86400:
		return pair(s/3600, "h", s%3600/60, "m")
	}
	return pair(s/86400, "d", s%86400/3600, "h")
}

func pair(a int64, ua string, b int64, ub string) string {
	if b == 0 {
		return strconv.FormatInt(a, 10) + ua
	}
	return strconv.FormatInt(a, 10) + ua + " " + strconv.FormatInt(b, 10) + ub
}

// humanMillis formats a check duration: "0.4 ms", "12 ms", "3.00 s".
func humanMillis(ms float64) string {
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
}
