package child

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/backend"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRoute(t *testing.T) {
	listen, backends, err := ParseRoute("127.0.0.1:80=127.0.0.1:81,127.0.0.1:82")
	if err != nil || listen != "127.0.0.1:80" || !slices.Equal(backends, []string{"127.0.0.1:81", "127.0.0.1:82"}) {
		t.Fatalf("ParseRoute = %q, %q, %v", listen, backends, err)
	}
	for _, bad := range []string{"", "127.0.0.1:80", "=127.0.0.1:81", "127.0.0.1:80="} {
		if _, _, err := ParseRoute(bad); err == nil {
			t.Errorf("ParseRoute(%q) succeeded, want an error", bad)
		}
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"-runs", "3"},
		{ServeBackend, "-echo", "x"},
		{ServeBackend, "-echo", "1", "extra"},
		{ServeBackend},
		{ServeGoProxy},
		{ServeGoProxy, "-route", "nonsense"},
	} {
		if err := Run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("Run(%q) succeeded, want an error", args)
		}
	}
}

// TestRunBackendsAndProxy runs both child modes in process: backends report their
// addresses as JSON and the Go proxy forwards to them.
func TestRunBackendsAndProxy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{lines: make(chan []byte, 1)}
	backendDone := make(chan error, 1)
	go func() { backendDone <- Run(ctx, []string{ServeBackend, "-echo", "1", "-sink", "1"}, out) }()

	var addrs backend.Addrs
	select {
	case line := <-out.lines:
		if err := json.Unmarshal(line, &addrs); err != nil {
			t.Fatalf("backend line %q: %v", line, err)
		}
	case err := <-backendDone:
		t.Fatalf("backend mode ended: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := ln.Addr().String()
	ln.Close()
	proxyDone := make(chan error, 1)
	go func() {
		proxyDone <- Run(ctx, []string{ServeGoProxy, "-route", front + "=" + addrs.Echo[0]}, io.Discard)
	}()

	var c net.Conn
	for range 100 { // the proxy listens within moments; bound the wait at 100 tries
		if c, err = net.DialTimeout("tcp", front, time.Second); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
		t.Fatalf("echo through the Go proxy = %q, %v", got, err)
	}
	c.Close()

	cancel()
	if err := <-proxyDone; err != nil {
		t.Fatal(err)
	}
	if err := <-backendDone; err != nil {
		t.Fatal(err)
	}
}

// lineWriter hands each write (one JSON line) to a channel.
type lineWriter struct{ lines chan []byte }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.lines <- bytes.Clone(p)
	return len(p), nil
}
