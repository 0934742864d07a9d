package eventloop

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/backend"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs s in the background and returns a stop func that reports its error.
func serve(t *testing.T, s interface{ Serve(context.Context) error }) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return func() error { cancel(); return <-done }
}

func dial(t *testing.T, addr string) *net.TCPConn {
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

// startProxy runs a sink or echo backend and the proxy in front of it.
func startProxy(t *testing.T, h backend.Handler) (addr string, stop func()) {
	t.Helper()
	be, err := backend.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	stopBackend := serve(t, be)
	p, err := Listen("127.0.0.1:0", []string{be.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	stopProxy := serve(t, p)
	return p.Addr(), func() {
		if err := stopProxy(); err != nil {
			t.Error(err)
		}
		if err := stopBackend(); err != nil {
			t.Error(err)
		}
	}
}

// TestHalfCloseCarriesTheReply: 5 bytes and a FIN arrive together (a short
// read with the FIN behind it), and 2 MiB fill the buffers on the way.
func TestHalfCloseCarriesTheReply(t *testing.T) {
	addr, stop := startProxy(t, backend.Sink)
	defer stop()
	for _, total := range []uint64{5, 2<<20 + 5} {
		c := dial(t, addr)
		if _, err := c.Write(make([]byte, total)); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		reply, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("%d bytes: reading the reply: %v", total, err)
		}
		if len(reply) != 8 || binary.BigEndian.Uint64(reply) != total {
			t.Fatalf("reply through proxy = %x, want %d", reply, total)
		}
	}
}

func TestEchoesEveryByte(t *testing.T) {
	addr, stop := startProxy(t, backend.Echo)
	defer stop()
	for i, size := range []int{1, 64, 16 << 10, 16<<10 + 1, 3 << 20, 64} {
		c := dial(t, addr)
		msg := bytes.Repeat([]byte{byte('a' + i)}, size)
		sent := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			sent <- err
		}()
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("message of %d bytes: reading the echo: %v", size, err)
		}
		if err := <-sent; err != nil {
			t.Fatalf("message of %d bytes: sending: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("message of %d bytes: echo differs", size)
		}
		c.Close()
	}
}

func TestListenRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		listen   string
		backends []string
	}{
		{"127.0.0.1:0", nil},
		{"127.0.0.1:0", []string{"db.internal:5432"}},
		{"[::1]:0", []string{"127.0.0.1:1"}},
	} {
		if _, err := Listen(tc.listen, tc.backends); err == nil {
			t.Errorf("Listen(%q, %q) succeeded, want an error", tc.listen, tc.backends)
		}
	}
}
