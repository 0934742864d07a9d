package proxyproto

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics; that a header it accepts, encoded
// again, parses to the same header; and that Read agrees with Parse, consuming
// exactly the bytes Parse says the header takes.
func FuzzParse(f *testing.F) {
	for _, h := range validHeaders {
		f.Add(h)
		f.Add(append(bytes.Clone(h), "trailing data"...))
		f.Add(h[:len(h)/2])
	}
	for _, broken := range []string{
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		"PROXY UNKNOWN",
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0b\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24",
		"GET / HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(broken))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		r := bytes.NewReader(b)
		rh, rerr := Read(r)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNoHeader) {
				t.Fatalf("Parse error %v is neither ErrInvalid nor ErrNoHeader", err)
			}
			if n != 0 || h != (Header{}) {
				t.Fatalf("failed Parse returned %+v, %d", h, n)
			}
			if rerr == nil {
				t.Fatalf("Read accepted %q, which Parse refuses: %v", b, err)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Parse consumed %d of %d bytes", n, len(b))
		}
		if rerr != nil || !sameHeader(rh, h) || r.Len() != len(b)-n {
			t.Fatalf("Read = %+v, %v, leaving %d bytes; Parse = %+v, taking %d of %d", rh, rerr, r.Len(), h, n, len(b))
		}

		var again []byte
		switch {
		case h.Version == 1 && h.Command == Local:
			again = []byte("PROXY UNKNOWN\r\n")
		case h.Version == 1:
			again = AppendV1(nil, h.Source, h.Destination)
		case h.Command == Local:
			again = AppendV2Local(nil)
		default:
			again = AppendV2(nil, h.Source, h.Destination)
		}
		h2, n2, err := Parse(again)
		if err != nil || n2 != len(again) || !sameHeader(h, h2) {
			t.Fatalf("re-encoded %+v as %q, which parses to %+v, %d, %v", h, again, h2, n2, err)
		}
	})
}
