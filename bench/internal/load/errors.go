// Package load generates the benchmark's loads against one address: bulk
// throughput to a sink, connection rate and ping-pong against an echo server, and
// a set of idle connections held open. Each load is bounded in time and count,
// dials 127.0.0.1 only (the caller passes the address), and reports what it did
// and how it failed, by kind.
//
// Typical use:
//
//	r, err := load.PingPong(ctx, "127.0.0.1:7000", 32, 5*time.Second)
//	fmt.Println(r.PerSecond(), r.Latency.Quantile(0.99))
package load

import (
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"syscall"
)

// errCorrupt marks a reply that differs from what was sent.
var errCorrupt = errors.New("load: reply differs from request")

// Error kinds, as reported.
const (
	KindRefused    = "refused"
	KindReset      = "reset"
	KindTimeout    = "timeout"
	KindEOF        = "eof"
	KindNoAddr     = "addr_not_available"
	KindNoFiles    = "too_many_files"
	KindCorrupt    = "corrupt"
	KindOther      = "other"
	KindBrokenPipe = "broken_pipe"
)

// ErrorCounts counts failed operations by kind.
type ErrorCounts map[string]int64

// Add counts err under its kind.
func (e ErrorCounts) Add(err error) { e[Classify(err)]++ }

// Merge adds o's counts to e.
func (e ErrorCounts) Merge(o ErrorCounts) {
	for k, v := range o {
		e[k] += v
	}
}

// Total is the number of errors of every kind.
func (e ErrorCounts) Total() int64 {
	var n int64
	for v := range maps.Values(e) {
		n += v
	}
	return n
}

// Classify names the kind of a connection error.
func Classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET):
		return KindReset
	case errors.Is(err, syscall.EPIPE):
		return KindBrokenPipe
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindEOF
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return KindNoAddr
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return KindNoFiles
	case errors.Is(err, errCorrupt):
		return KindCorrupt
	default:
		return KindOther
	}
}
