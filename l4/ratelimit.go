package l4

import (
	"sync/atomic"
	"time"
)

// logLimit lets one noisy log line through per interval and counts the
// ones it held back, so an accept loop under EMFILE or a dead backend cannot
// flood the log.
type logLimit struct {
	interval   time.Duration
	next       atomic.Int64 // unix ns before which lines are suppressed
	suppressed atomic.Int64
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the last one that was.
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int64) {
	t := now.UnixNano()
	next := l.next.Load()
	if t < next || !l.next.CompareAndSwap(next, t+int64(l.interval)) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
