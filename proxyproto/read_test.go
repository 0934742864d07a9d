package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"
)

var validHeaders = map[string][]byte{
	"v1 TCP4":            []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
	"v1 TCP4 shortest":   []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	"v1 TCP6":            []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
	"v1 TCP6 shortest":   []byte("PROXY TCP6 :: :: 0 0\r\n"),
	"v1 TCP6 longest":    []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	"v1 UNKNOWN":         []byte("PROXY UNKNOWN\r\n"),
	"v1 UNKNOWN longest": []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	"v2 TCP4":            AppendV2(nil, tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443")),
	"v2 TCP6":            AppendV2(nil, tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443")),
	"v2 LOCAL":           AppendV2Local(nil),
	"v2 PROXY UNSPEC":    AppendV2(nil, nil, nil),
	"v2 AWS with TLVs":   awsHeader,
	"v2 UNIX":            v2(0x21, 0x31, make([]byte, 216), tlv(0x04, make([]byte, 10))),
}

// readers wrap a stream the ways a connection may deliver it.
var readers = map[string]func(io.Reader) io.Reader{
	"whole":             func(r io.Reader) io.Reader { return r },
	"one byte per Read": iotest.OneByteReader,
	"half per Read":     iotest.HalfReader,
	"EOF with the data": func(r io.Reader) io.Reader { return &eofWithData{r.(*bytes.Reader)} },
}

// eofWithData returns io.EOF together with the last bytes, as io.Reader allows,
// without reading ahead (iotest.DataErrReader reads ahead).
type eofWithData struct{ r *bytes.Reader }

func (e *eofWithData) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == nil && e.r.Len() == 0 {
		err = io.EOF
	}
	return n, err
}

// TestReadConsumesExactlyTheHeader: whatever way the bytes arrive, Read returns
// what Parse returns and leaves every byte after the header unread.
func TestReadConsumesExactlyTheHeader(t *testing.T) {
	trailer := []byte("\x16\x03\x01 the client's first bytes")
	for name, header := range validHeaders {
		want, _, err := Parse(header)
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		for rname, wrap := range readers {
			for _, after := range [][]byte{trailer, nil} {
				src := bytes.NewReader(append(bytes.Clone(header), after...))
				got, err := Read(wrap(src))
				if err != nil {
					t.Fatalf("%s, %s: Read: %v", name, rname, err)
				}
				if !sameHeader(got, want) {
					t.Fatalf("%s, %s: Read = %+v, want %+v", name, rname, got, want)
				}
				if src.Len() != len(after) {
					t.Fatalf("%s, %s: %d bytes left after the header, want %d", name, rname, src.Len(), len(after))
				}
			}
		}
	}
}

// countingReader counts Read calls: on a raw connection each is a syscall.
type countingReader struct {
	r     io.Reader
	calls int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.calls++
	return c.r.Read(p)
}

func TestReadCalls(t *testing.T) {
	tests := []struct {
		header string
		max    int
	}{
		{"v1 TCP4", 6},
		{"v1 TCP6", 7},
		{"v1 UNKNOWN", 1},
		{"v2 TCP4", 2},
		{"v2 TCP6", 2},
		{"v2 LOCAL", 2},
		{"v2 AWS with TLVs", 3},
	}
	for _, tt := range tests {
		c := &countingReader{r: bytes.NewReader(append(bytes.Clone(validHeaders[tt.header]), "payload"...))}
		if _, err := Read(c); err != nil {
			t.Fatalf("%s: %v", tt.header, err)
		}
		if c.calls > tt.max {
			t.Errorf("%s: %d reads, want at most %d", tt.header, c.calls, tt.max)
		}
		t.Logf("%s: %d bytes in %d reads", tt.header, len(validHeaders[tt.header]), c.calls)
	}
}

// stallReader hands out its data, then fails the test's expectations by
// reporting errStalled, which stands for a client that sends nothing more.
type stallReader struct{ data []byte }

var errStalled = errors.New("read after the data: the reader would have waited")

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errStalled
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name    string
		r       io.Reader
		is      []error
		wantErr string
		left    int // bytes the reader must still hold, -1: don't care
	}{
		{"empty stream", bytes.NewReader(nil), []error{io.EOF}, "reading PROXY header: EOF", 0},
		{"no header: decided on the first byte", iotest.OneByteReader(strings.NewReader("GET / HTTP/1.1\r\n")), []error{ErrNoHeader}, "", 15},
		{"no header: TLS hello", bytes.NewReader([]byte("\x16\x03\x01\x02\x00\x01")), []error{ErrNoHeader}, "", 0},
		{"v1 cut short", strings.NewReader("PROXY TCP4 1.2"), []error{ErrInvalid, io.ErrUnexpectedEOF}, "stream ended after 14 bytes", 0},
		{"v2 cut short", bytes.NewReader(validHeaders["v2 TCP6"][:40]), []error{ErrInvalid, io.ErrUnexpectedEOF}, "stream ended after 40 bytes", 0},
		{"v1 without CRLF", strings.NewReader("PROXY UNKNOWN " + strings.Repeat("x", 200)), []error{ErrInvalid}, "no CRLF within 107 bytes", 14 + 200 - 107},
		{"v1 TCP6 line that cannot fit", strings.NewReader("PROXY TCP6 " + strings.Repeat("f", 100) + " :: 1 1\r\n"), []error{ErrInvalid}, "no CRLF within 107", -1},
		{"v1 bad address", strings.NewReader("PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\npayload"), []error{ErrInvalid}, `source address "1.2.3.999"`, 7},
		// Refused on the fixed part: no wait for bytes that never come.
		{"v2 bad version, refused at once", &stallReader{v2(0x31, 0x11)[:15]}, []error{ErrInvalid}, "version nibble 3", 0},
		{"v2 bad family, refused at once", &stallReader{v2(0x21, 0x51)[:15]}, []error{ErrInvalid}, "0x51", 0},
		{"v2 length overflow", &stallReader{append(append(v2(0x21, 0x11)[:14], 0xff, 0xff), make([]byte, 12)...)}, []error{ErrInvalid}, "exceeds", 0},
		{"reader error passes through", &stallReader{[]byte("PROXY TCP")}, []error{errStalled}, "reading PROXY header after 9 bytes", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Read(tt.r)
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Fatalf("Read = %+v, %v; want an error that is %v", h, err, want)
				}
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			if tt.left >= 0 {
				left, _ := io.Copy(io.Discard, tt.r)
				if int(left) != tt.left {
					t.Errorf("%d bytes left unread, want %d", left, tt.left)
				}
			}
		})
	}
}

// TestReadOverTCP: a real loopback connection carrying a header and then data,
// as an outer load balancer sends them, in one segment.
func TestReadOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for _, name := range []string{"v1 TCP4", "v2 TCP6", "v2 AWS with TLVs"} {
		header := validHeaders[name]
		sent := make(chan error, 1)
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				sent <- err
				return
			}
			defer c.Close()
			_, err = c.Write(append(bytes.Clone(header), payload...))
			sent <- err
		}()
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		h, err := Read(conn)
		if err != nil {
			t.Fatalf("%s: Read: %v", name, err)
		}
		want, _, _ := Parse(header)
		if !sameHeader(h, want) {
			t.Fatalf("%s: Read = %+v, want %+v", name, h, want)
		}
		rest, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: reading the data after the header: %v", name, err)
		}
		if !bytes.Equal(rest, payload) {
			t.Fatalf("%s: %d bytes after the header, want the %d-byte payload intact", name, len(rest), len(payload))
		}
		if err := <-sent; err != nil {
			t.Fatalf("%s: client: %v", name, err)
		}
	}
}

// TestReadDeadline: a client that stops mid-header is cut off by the deadline
// the caller set, and the error says so.
func TestReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := net.Pipe()
		defer server.Close()
		go func() {
			client.Write([]byte("PROXY TCP4 192.168.0.1 "))
			// then nothing, until the server gives up and the pipe closes
		}()
		defer client.Close()
		if err := server.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := Read(server)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read error = %v, want os.ErrDeadlineExceeded", err)
		}
	})
}

func TestReadAllocatesOnlyTheAddresses(t *testing.T) {
	for name, header := range validHeaders {
		want := 1.0
		if h, _, _ := Parse(header); h.Source == nil {
			want = 0
		}
		r := bytes.NewReader(nil)
		allocs := testing.AllocsPerRun(100, func() {
			r.Reset(header)
			if _, err := Read(r); err != nil {
				panic(err)
			}
		})
		if allocs != want {
			t.Errorf("%s: %.1f allocs per Read, want %.0f", name, allocs, want)
		}
	}
}

func TestV1MinRemainingNeverOvershoots(t *testing.T) {
	// For every prefix of every valid v1 line, the bound must not reach past the
	// line's end.
	for name, header := range validHeaders {
		if !bytes.HasPrefix(header, sigV1) {
			continue
		}
		for n := minHeaderSize; n < len(header); n++ {
			if bytes.Contains(header[:n], crlf) {
				break
			}
			if need := v1MinRemaining(header[:n]); need < 1 || n+need > len(header) {
				t.Fatalf("%s: after %d of %d bytes, asks for %d more", name, n, len(header), need)
			}
		}
	}
}
