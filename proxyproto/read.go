package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// readBuffers hold a header while Read assembles it; pooled, so Read allocates
// only the addresses it returns.
var readBuffers = sync.Pool{New: func() any { return new([MaxV2Size]byte) }}

// Read reads exactly one PROXY header, v1 or v2, from r and returns it. It never
// reads a byte past the header, so r can be the raw connection and what follows
// is left for the caller (to splice, for instance). It reads no more at a time
// than any valid header must still contain: 15 bytes first (the shortest header),
// then for v2 the rest of the fixed part with the address block its family
// needs, then what the declared length says; for v1 the least that could still
// complete the line (about 6 reads for a TCP4 line, instead of one per byte).
//
// Errors: ErrNoHeader, as soon as the first bytes rule out both signatures; an
// error wrapping ErrInvalid for a malformed header, also wrapping
// io.ErrUnexpectedEOF when the stream ends inside one; an error wrapping io.EOF
// when the stream ends before its first byte; r's own error otherwise (a
// deadline the caller set gives os.ErrDeadlineExceeded).
func Read(r io.Reader) (Header, error) {
	buf := readBuffers.Get().(*[MaxV2Size]byte)
	defer readBuffers.Put(buf)
	return read(r, buf[:])
}

func read(r io.Reader, buf []byte) (Header, error) {
	n, err := readStart(r, buf[:minHeaderSize])
	if err != nil {
		return Header{}, err
	}
	if bytes.HasPrefix(buf, sigV2) {
		if err := checkV2Fixed(buf[:n]); err != nil {
			return Header{}, err
		}
		// The length field ends at byte 16; read along the address block the
		// family needs, which any valid header has.
		want := 16
		if buf[12]&0x0f == byte(Proxy) {
			want += v2AddrLen(buf[13])
		}
		if n, err = readTo(r, buf, n, want); err != nil {
			return Header{}, err
		}
		if total := 16 + int(binary.BigEndian.Uint16(buf[14:16])); total > n && total <= len(buf) {
			if n, err = readTo(r, buf, n, total); err != nil {
				return Header{}, err
			}
		}
		return parsed(buf[:n])
	}
	for bytes.Index(buf[:n], crlf) < 0 {
		need := v1MinRemaining(buf[:n])
		if n+need > MaxV1Size {
			return Header{}, fmt.Errorf("%w: v1 line has no CRLF within %d bytes", ErrInvalid, MaxV1Size)
		}
		if n, err = readTo(r, buf, n, n+need); err != nil {
			return Header{}, err
		}
	}
	return parsed(buf[:n])
}

// parsed parses the bytes Read collected, which must be one whole header.
func parsed(b []byte) (Header, error) {
	h, n, err := Parse(b)
	if err == nil && n != len(b) {
		// Parse found a shorter header than the reads assumed: the bytes after
		// it are gone. Cannot happen for a valid header; refuse rather than lose
		// data.
		return Header{}, fmt.Errorf("%w: %d bytes after a %d-byte header were read", ErrInvalid, len(b)-n, n)
	}
	return h, err
}

// readStart reads the first minHeaderSize bytes into b, stopping with
// ErrNoHeader as soon as what it has cannot start a header.
func readStart(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if !couldStartHeader(b[:n]) {
			return n, ErrNoHeader
		}
		if err != nil && n < len(b) {
			return n, readError(err, n)
		}
	}
	return n, nil
}

// readTo reads buf[n:want] in full and returns want.
func readTo(r io.Reader, buf []byte, n, want int) (int, error) {
	m, err := io.ReadFull(r, buf[n:want])
	if err != nil {
		return n + m, readError(err, n+m)
	}
	return want, nil
}

func readError(err error, n int) error {
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return fmt.Errorf("reading PROXY header: %w", io.EOF)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: stream ended after %d bytes: %w", ErrInvalid, n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("reading PROXY header after %d bytes: %w", n, err)
}

// v1MinRemaining returns how many more bytes any valid v1 line starting with b
// (which begins "PROXY " and has no CRLF yet) must still have. Read asks for no
// more than that, so it never reads past the CRLF. For a line that is already
// invalid the answer only has to be positive: Parse will refuse the line.
func v1MinRemaining(b []byte) int {
	const minCRLF = 2
	if b[len(b)-1] == '\r' {
		return 1 // this may be the end
	}
	proto, fields, spaced := bytes.Cut(b[len(sigV1):], []byte(" "))
	if !spaced {
		return max(minHeaderSize-len(b), minCRLF)
	}
	var minAddr int
	switch string(proto) {
	case "TCP4":
		minAddr = len("0.0.0.0")
	case "TCP6":
		minAddr = len("::")
	default: // UNKNOWN takes anything up to the CRLF
		return minCRLF
	}
	least := [4]int{minAddr, minAddr, 1, 1} // source, destination, ports
	k := bytes.Count(fields, []byte(" "))   // the field being read
	if k >= len(least) {
		return minCRLF
	}
	have := len(fields) - (bytes.LastIndexByte(fields, ' ') + 1)
	need := max(least[k]-have, 0)
	for _, l := range least[k+1:] {
		need += 1 + l
	}
	return need + minCRLF
}
