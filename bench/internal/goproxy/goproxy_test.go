package goproxy

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/balancel4/balance-l4/bench/internal/backend"
	"github.com/balancel4/balance-l4/bench/internal/benchtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHalfCloseCarriesTheReply(t *testing.T) {
	sink, err := backend.Listen("127.0.0.1:0", backend.Sink)
	if err != nil {
		t.Fatal(err)
	}
	stopSink := benchtest.Serve(t, sink)
	p, err := Listen("127.0.0.1:0", []string{sink.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	stopProxy := benchtest.Serve(t, p)

	c := benchtest.Dial(t, p.Addr())
	const total = 2<<20 + 5
	if _, err := c.Write(make([]byte, total)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != 8 || binary.BigEndian.Uint64(reply) != total {
		t.Fatalf("reply through proxy = %x, want %d", reply, total)
	}
	if err := stopProxy(); err != nil {
		t.Fatal(err)
	}
	if err := stopSink(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundRobin(t *testing.T) {
	seen := make(chan int, 8)
	var stops []func() error
	var addrs []string
	for i := range 2 {
		s, err := backend.Listen("127.0.0.1:0", func(c *net.TCPConn) {
			seen <- i
			c.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, benchtest.Serve(t, s))
		addrs = append(addrs, s.Addr())
	}
	p, err := Listen("127.0.0.1:0", addrs)
	if err != nil {
		t.Fatal(err)
	}
	stops = append([]func() error{benchtest.Serve(t, p)}, stops...)

	var got []int
	for range 4 {
		c := benchtest.Dial(t, p.Addr())
		// The backend closes at once; EOF here means the connection went through.
		if _, err := io.ReadAll(c); err != nil {
			t.Fatal(err)
		}
		c.Close()
		got = append(got, <-seen)
	}
	want := []int{0, 1, 0, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backends in turn = %v, want %v", got, want)
		}
	}
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestListenNeedsBackends(t *testing.T) {
	if _, err := Listen("127.0.0.1:0", nil); err == nil {
		t.Fatal("Listen without backends succeeded, want an error")
	}
}
