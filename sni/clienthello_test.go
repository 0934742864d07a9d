package sni

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// captureHello returns the bytes crypto/tls sends first as a client with
// cfg: its ClientHello in one record.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := tls.Client(client, cfg)
		_ = c.Handshake() // fails once server closes
		_ = c.Close()
	}()
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	n, err := server.Read(buf) // crypto/tls writes the ClientHello at once
	if err != nil {
		t.Fatalf("reading the ClientHello: %v", err)
	}
	_ = server.Close()
	<-done
	return buf[:n]
}

// recordsOf splits a handshake message into handshake records of at most
// size payload bytes each.
func recordsOf(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, contentHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// message returns the ClientHello message inside a capture.
func message(t testing.TB, hello []byte) []byte {
	t.Helper()
	msg, err := clientHello(hello)
	if err != nil {
		t.Fatalf("capture is not a ClientHello: %v", err)
	}
	return msg
}

func TestServerNameFromCryptoTLS(t *testing.T) {
	tests := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"TLS 1.3 with a name", &tls.Config{ServerName: "db.example.com"}, "db.example.com"},
		{"upper case kept as sent", &tls.Config{ServerName: "API.Example.COM"}, "API.Example.COM"},
		{"TLS 1.2 only", &tls.Config{ServerName: "old.example.com", MaxVersion: tls.VersionTLS12}, "old.example.com"},
		{"no name (InsecureSkipVerify, no ServerName)", &tls.Config{InsecureSkipVerify: true}, ""},
		{"an IP address is never sent as SNI", &tls.Config{ServerName: "10.0.0.1"}, ""},
		{"ALPN and a long name", &tls.Config{ServerName: strings.Repeat("a", 60) + ".example.com", NextProtos: []string{"h2", "http/1.1"}},
			strings.Repeat("a", 60) + ".example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hello := captureHello(t, tc.cfg)
			got, err := ServerName(hello)
			if err != nil || got != tc.want {
				t.Fatalf("ServerName = %q, %v; want %q", got, err, tc.want)
			}
			// Bytes after the ClientHello (early data, the next flight) change nothing.
			if got, err := ServerName(append(bytes.Clone(hello), 23, 3, 3, 0, 1, 'x')); err != nil || got != tc.want {
				t.Fatalf("with bytes after it: %q, %v", got, err)
			}
			// Every strict prefix asks for more.
			for i := range len(hello) {
				if _, err := ServerName(hello[:i]); err != ErrIncomplete {
					t.Fatalf("prefix of %d/%d bytes: %v, want ErrIncomplete", i, len(hello), err)
				}
			}
			// Fragmented over records of any size, even one byte each.
			msg := message(t, hello)
			for _, size := range []int{1, 2, 3, 4, 5, 7, 64, 100, len(msg) - 1} {
				frag := recordsOf(msg, size)
				if got, err := ServerName(frag); err != nil || got != tc.want {
					t.Fatalf("in records of %d bytes: %q, %v", size, got, err)
				}
				for _, cut := range []int{len(frag) / 3, len(frag) - 1} {
					if _, err := ServerName(frag[:cut]); err != ErrIncomplete {
						t.Fatalf("records of %d bytes cut at %d: %v, want ErrIncomplete", size, cut, err)
					}
				}
			}
		})
	}
}

func TestServerNameNotTLS(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"\x00",
		"\x16\x01",              // handshake byte, but no TLS record version
		"\x80\x2e\x01\x03\x01",  // an SSLv2-format ClientHello
		"PROXY TCP4 1.2.3.4 ..", // a PROXY header where none is expected
	} {
		if _, err := ServerName([]byte(in)); err != ErrNotTLS {
			t.Errorf("ServerName(%q) = %v, want ErrNotTLS", in, err)
		}
	}
	for _, in := range []string{"", "\x16", "\x16\x03", "\x16\x03\x01\x00"} {
		if _, err := ServerName([]byte(in)); err != ErrIncomplete {
			t.Errorf("ServerName(%q) = %v, want ErrIncomplete", in, err)
		}
	}
}

func TestServerNameTooLarge(t *testing.T) {
	// A handshake header that announces 20 000 bytes: known at once.
	head := []byte{contentHandshake, 3, 1, 0x40, 0, typeClientHello, 0, 0x4e, 0x20}
	if _, err := ServerName(head); err != ErrTooLarge {
		t.Fatalf("20 000-byte ClientHello: %v, want ErrTooLarge", err)
	}
	// The largest that fits in MaxHello with its one record header is fine
	// as far as size goes.
	size := MaxHello - recordHeaderLen - handshakeHeaderLen
	head = []byte{contentHandshake, 3, 1, 0x40, 0, typeClientHello, byte(size >> 16), byte(size >> 8), byte(size)}
	if _, err := ServerName(head); err != ErrIncomplete {
		t.Fatalf("%d-byte ClientHello: %v, want ErrIncomplete", size, err)
	}
	size++
	head[6], head[7], head[8] = byte(size>>16), byte(size>>8), byte(size)
	if _, err := ServerName(head); err != ErrTooLarge {
		t.Fatalf("%d-byte ClientHello: %v, want ErrTooLarge", size, err)
	}
}

// hello builds a ClientHello message around extensions.
func hello(exts ...[]byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
	body = append(body, 1, 0)                // null compression
	var all []byte
	for _, e := range exts {
		all = append(all, e...)
	}
	if exts != nil {
		body = append(body, byte(len(all)>>8), byte(len(all)))
		body = append(body, all...)
	}
	return append([]byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

// ext builds one extension.
func ext(typ uint16, data []byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
}

// sniExt builds a server_name extension with entries of (type, name).
func sniExt(entries ...any) []byte {
	var list []byte
	for i := 0; i < len(entries); i += 2 {
		name := entries[i+1].(string)
		list = append(list, byte(entries[i].(int)), byte(len(name)>>8), byte(len(name)))
		list = append(list, name...)
	}
	return ext(extServerName, append([]byte{byte(len(list) >> 8), byte(len(list))}, list...))
}

func TestServerNameHandBuilt(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want string
		err  error
	}{
		{"no extensions at all", hello(), "", nil},
		{"empty extensions", hello([]byte{}), "", nil},
		{"other extensions only", hello(ext(16, []byte{0, 3, 2, 'h', '2'})), "", nil},
		{"a name", hello(sniExt(0, "a.example.com")), "a.example.com", nil},
		{"a trailing dot is kept", hello(sniExt(0, "a.example.com.")), "a.example.com.", nil},
		{"a name after another extension", hello(ext(16, nil), sniExt(0, "x.test")), "x.test", nil},
		{"an unknown name type is skipped", hello(sniExt(7, "zzz", 0, "b.test")), "b.test", nil},
		{"two host names", hello(sniExt(0, "a.test", 0, "b.test")), "", ErrMalformed},
		{"two server_name extensions", hello(sniExt(0, "a.test"), sniExt(0, "b.test")), "", ErrMalformed},
		{"an empty name list", hello(ext(extServerName, []byte{0, 0})), "", ErrMalformed},
		{"an empty name", hello(sniExt(0, "")), "", ErrMalformed},
		{"a space in the name", hello(sniExt(0, "a b.test")), "", ErrMalformed},
		{"a NUL in the name", hello(sniExt(0, "a\x00.test")), "", ErrMalformed},
		{"a newline in the name", hello(sniExt(0, "a.test\nX: y")), "", ErrMalformed},
		{"an empty label", hello(sniExt(0, "a..test")), "", ErrMalformed},
		{"a leading dot", hello(sniExt(0, ".test")), "", ErrMalformed},
		{"a name of dots", hello(sniExt(0, ".")), "", ErrMalformed},
		{"an extension longer than the rest", hello([]byte{0, 0, 0, 9, 1}), "", ErrMalformed},
		{"not a ClientHello (a ServerHello)", append([]byte{2}, hello()[1:]...), "", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ServerName(recordsOf(tc.msg, maxRecordPayload))
			if got != tc.want || err != tc.err {
				t.Fatalf("ServerName = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}

	// A message cut short (its header fixed to say so) is malformed, except
	// when the cut leaves exactly a ClientHello without extensions.
	msg := hello(sniExt(0, "a.example.com"))
	noExts := len(hello())
	for cut := handshakeHeaderLen; cut < len(msg); cut++ {
		short := bytes.Clone(msg[:cut])
		n := cut - handshakeHeaderLen
		short[1], short[2], short[3] = byte(n>>16), byte(n>>8), byte(n)
		name, err := ServerName(recordsOf(short, maxRecordPayload))
		switch {
		case cut == noExts && (name != "" || err != nil):
			t.Errorf("message cut before its extensions: %q, %v; want no name", name, err)
		case cut != noExts && err != ErrMalformed:
			t.Errorf("message cut to %d bytes: %q, %v; want ErrMalformed", cut, name, err)
		}
	}

	// A record that is not a handshake record in the middle of the ClientHello.
	frag := recordsOf(msg, 10)
	frag[15] = 21 // the second record becomes an alert
	if _, err := ServerName(frag); err != ErrMalformed {
		t.Fatalf("an alert record inside the ClientHello: %v, want ErrMalformed", err)
	}
	// A record claiming more than 2^14 bytes.
	if _, err := ServerName([]byte{contentHandshake, 3, 1, 0x40, 1}); err != ErrMalformed {
		t.Fatalf("an oversized record: %v, want ErrMalformed", err)
	}
}

func TestServerNameAllocations(t *testing.T) {
	h := captureHello(t, &tls.Config{ServerName: "db.example.com"})
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ServerName(h); err != nil {
			panic(err)
		}
	})
	if allocs > 1 { // the name's string
		t.Fatalf("ServerName allocates %v times for a one-record ClientHello, want at most 1", allocs)
	}
}

func BenchmarkServerName(b *testing.B) {
	h := captureHello(b, &tls.Config{ServerName: "db.example.com"})
	b.ReportAllocs()
	b.SetBytes(int64(len(h)))
	for b.Loop() {
		if _, err := ServerName(h); err != nil {
			b.Fatal(err)
		}
	}
}
