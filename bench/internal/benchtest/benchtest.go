// Package benchtest holds the helpers the benchmark's own tests share: a
// server run in the background until the test stops it, and a dial with
// deadlines, so a broken peer fails a test instead of hanging it.
package benchtest

import (
	"context"
	"net"
	"testing"
	"time"
)

// Serve runs s in the background and returns a stop func that cancels it and
// reports what Serve returned.
func Serve(t testing.TB, s interface{ Serve(context.Context) error }) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return func() error { cancel(); return <-done }
}

// Dial connects to addr within 5 s and gives the connection a 10 s deadline.
func Dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}
