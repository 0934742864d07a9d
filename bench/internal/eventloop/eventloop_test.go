package eventloop

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/balancel4/balance-l4/bench/internal/backend"
	"github.com/balancel4/balance-l4/bench/internal/benchtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startProxy runs a sink or echo backend and the proxy in front of it.
func startProxy(t *testing.T, h backend.Handler) (addr string, stop func()) {
	t.Helper()
	be, err := backend.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	stopBackend := benchtest.Serve(t, be)
	p, err := Listen("127.0.0.1:0", []string{be.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	stopProxy := benchtest.Serve(t, p)
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
		c := benchtest.Dial(t, addr)
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
		c := benchtest.Dial(t, addr)
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
