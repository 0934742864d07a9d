package health

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs handle for every connection to a new loopback listener until
// the test ends; it returns the listener's address. Handlers must return
// when their connection is closed: cleanup closes them all and waits.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// reply answers every connection with b, then holds it open until the
// client closes it.
func reply(b string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write([]byte(b)); err != nil {
			return
		}
		drain(c)
	}
}

// silent accepts and never writes.
func silent(c net.Conn) { drain(c) }

// drain reads until the peer closes.
func drain(c net.Conn) {
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// check runs c against addr with a timeout.
func check(t *testing.T, c Checker, addr string, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Check(ctx, addr)
}

func mustChecker(t *testing.T, s CheckSettings) Checker {
	t.Helper()
	c, err := NewChecker(s)
	if err != nil {
		t.Fatalf("NewChecker(%+v): %v", s, err)
	}
	return c
}

// wantErr fails unless err wraps target (when not nil) and its text holds
// every one of words.
func wantErr(t *testing.T, err, target error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("check passed, want an error mentioning %q", words)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %v", err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// refused is the error text of a connect to a closed loopback port.
const refused = "connection refused"
