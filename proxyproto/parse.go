package proxyproto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"unsafe"
)

// Parse parses the PROXY header at the start of b and returns it with the
// number of bytes it takes; the bytes after it are not looked at. The version is
// told by the signature. Errors: ErrNoHeader when b does not start with a
// signature; otherwise an error wrapping ErrInvalid that says what is wrong, and
// also io.ErrUnexpectedEOF when b ends inside what could still become a valid
// header.
func Parse(b []byte) (Header, int, error) {
	switch {
	case bytes.HasPrefix(b, sigV2):
		return parseV2(b)
	case bytes.HasPrefix(b, sigV1):
		return parseV1(b)
	case couldStartHeader(b):
		return Header{}, 0, truncated("signature", len(b), len(sigV1))
	}
	return Header{}, 0, ErrNoHeader
}

// couldStartHeader reports whether b is the start of some header: it starts
// with a signature or is a prefix of one.
func couldStartHeader(b []byte) bool {
	return bytes.HasPrefix(sigV2, b[:min(len(b), len(sigV2))]) ||
		bytes.HasPrefix(sigV1, b[:min(len(b), len(sigV1))])
}

func truncated(what string, have, want int) error {
	return fmt.Errorf("%w: truncated %s: %d of at least %d bytes: %w", ErrInvalid, what, have, want, io.ErrUnexpectedEOF)
}

// parseV1 parses a text header; b starts with "PROXY ".
//
//	PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n
//	PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n
//	PROXY UNKNOWN[ anything]\r\n
func parseV1(b []byte) (Header, int, error) {
	end := bytes.Index(b[:min(len(b), MaxV1Size)], crlf)
	if end < 0 {
		if len(b) >= MaxV1Size {
			return Header{}, 0, fmt.Errorf("%w: v1 line has no CRLF within %d bytes", ErrInvalid, MaxV1Size)
		}
		return Header{}, 0, truncated("v1 line", len(b), minHeaderSize)
	}
	n := end + len(crlf)
	proto, rest, spaced := bytes.Cut(b[len(sigV1):end], []byte(" "))
	var want6 bool
	switch string(proto) {
	case "UNKNOWN":
		// Whatever follows UNKNOWN is to be ignored.
		return Header{Version: 1, Command: Local}, n, nil
	case "TCP4":
	case "TCP6":
		want6 = true
	default:
		return Header{}, 0, fmt.Errorf("%w: v1 protocol %q, want TCP4, TCP6 or UNKNOWN", ErrInvalid, proto)
	}
	if n := bytes.Count(rest, []byte(" ")) + 1; !spaced || n != 4 {
		if !spaced {
			n = 0
		}
		return Header{}, 0, fmt.Errorf("%w: v1 %s line has %d fields after the protocol, want 4 (addresses and ports)", ErrInvalid, proto, n)
	}
	var fields [4][]byte
	for i := range fields {
		fields[i], rest, _ = bytes.Cut(rest, []byte(" "))
	}
	src, err := parseV1IP(fields[0], want6, "source address")
	if err != nil {
		return Header{}, 0, err
	}
	dst, err := parseV1IP(fields[1], want6, "destination address")
	if err != nil {
		return Header{}, 0, err
	}
	sport, err := parseV1Port(fields[2], "source port")
	if err != nil {
		return Header{}, 0, err
	}
	dport, err := parseV1Port(fields[3], "destination port")
	if err != nil {
		return Header{}, 0, err
	}
	h := Header{Version: 1, Command: Proxy}
	h.Source, h.Destination = newAddrs(src, dst, sport, dport)
	return h, n, nil
}

func parseV1IP(field []byte, want6 bool, what string) (netip.Addr, error) {
	// netip parses strings; viewing the bytes as one, instead of copying, keeps
	// Parse free of allocations. ParseAddr keeps no reference on success, and its
	// error (which would) is dropped here.
	var ip netip.Addr
	var err error
	if len(field) > 0 && len(field) <= len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") {
		ip, err = netip.ParseAddr(unsafe.String(unsafe.SliceData(field), len(field)))
	}
	switch {
	case len(field) == 0 || err != nil || ip.Zone() != "":
		return ip, fmt.Errorf("%w: v1 %s %q is not an IP address", ErrInvalid, what, field)
	case want6 && !ip.Is6():
		return ip, fmt.Errorf("%w: v1 %s %q is not IPv6, as TCP6 says", ErrInvalid, what, field)
	case !want6 && !ip.Is4():
		return ip, fmt.Errorf("%w: v1 %s %q is not IPv4, as TCP4 says", ErrInvalid, what, field)
	}
	return ip, nil
}

// parseV1Port parses a decimal port 0..65535, without sign or leading zero.
func parseV1Port(field []byte, what string) (uint16, error) {
	bad := len(field) == 0 || len(field) > 5 || (field[0] == '0' && len(field) > 1)
	v := 0
	for _, c := range field {
		if c < '0' || c > '9' {
			bad = true
			break
		}
		v = v*10 + int(c-'0')
	}
	if bad || v > 65535 {
		return 0, fmt.Errorf("%w: v1 %s %q is not a port number (0..65535, no leading zero)", ErrInvalid, what, field)
	}
	return uint16(v), nil
}

// parseV2 parses a binary header; b starts with the v2 signature.
func parseV2(b []byte) (Header, int, error) {
	if len(b) < 16 {
		if err := checkV2Fixed(b); err != nil {
			return Header{}, 0, err
		}
		return Header{}, 0, truncated("v2 header", len(b), 16)
	}
	if err := checkV2Fixed(b); err != nil {
		return Header{}, 0, err
	}
	length := int(binary.BigEndian.Uint16(b[14:16]))
	total := 16 + length
	if total > MaxV2Size {
		return Header{}, 0, fmt.Errorf("%w: v2 length %d exceeds the %d-byte limit", ErrInvalid, length, MaxV2Size-16)
	}
	if len(b) < total {
		return Header{}, 0, truncated("v2 header", len(b), total)
	}
	h := Header{Version: 2, Command: Command(b[12] & 0x0f)}
	fam := b[13]
	if h.Command == Local || fam == famUnspec {
		// LOCAL: any address is to be ignored. UNSPEC: there is none, and where
		// TLVs would start is not defined. Skip the whole body.
		return h, total, nil
	}
	addrLen := v2AddrLen(fam)
	if length < addrLen {
		return Header{}, 0, fmt.Errorf("%w: v2 length %d is shorter than the %d bytes of family 0x%02x addresses", ErrInvalid, length, addrLen, fam)
	}
	if err := checkTLVs(b[:total], 16+addrLen); err != nil {
		return Header{}, 0, err
	}
	body := b[16:]
	switch fam {
	case famTCP4:
		h.Source, h.Destination = newAddrs(
			netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8])),
			binary.BigEndian.Uint16(body[8:10]), binary.BigEndian.Uint16(body[10:12]))
	case famTCP6:
		h.Source, h.Destination = newAddrs(
			netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32])),
			binary.BigEndian.Uint16(body[32:34]), binary.BigEndian.Uint16(body[34:36]))
	}
	// UDP and UNIX families: no TCP address, as the specification allows (the
	// receiver falls back to UNSPEC).
	return h, total, nil
}

// checkV2Fixed checks the version, command and family bytes of a v2 header, as
// far as b has them, so a reader can refuse a bad header before waiting for
// the rest of it.
func checkV2Fixed(b []byte) error {
	if len(b) > 12 {
		if v := b[12] >> 4; v != v2Version>>4 {
			return fmt.Errorf("%w: v2 version nibble %d, want 2", ErrInvalid, v)
		}
		if c := b[12] & 0x0f; c > byte(Proxy) {
			return fmt.Errorf("%w: v2 command %d, want LOCAL (0) or PROXY (1)", ErrInvalid, c)
		}
	}
	if len(b) > 13 {
		switch fam := b[13]; fam {
		case famUnspec, famTCP4, famUDP4, famTCP6, famUDP6, famUnixStream, famUnixDgram:
		default:
			return fmt.Errorf("%w: v2 address family and transport byte 0x%02x is not one the specification defines", ErrInvalid, fam)
		}
	}
	return nil
}

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	zeroCRC    [4]byte // stands in for the checksum field; a global, so it does not escape per call
)

// checkTLVs checks that the TLVs from off to the end of header exactly fill it,
// and verifies a CRC32C TLV, as the specification requires of a receiver that
// supports it. TLVs are otherwise skipped.
func checkTLVs(header []byte, off int) error {
	for off < len(header) {
		if len(header)-off < 3 {
			return fmt.Errorf("%w: v2 TLV at byte %d: %d bytes left, a TLV takes at least 3", ErrInvalid, off, len(header)-off)
		}
		typ := header[off]
		n := int(binary.BigEndian.Uint16(header[off+1 : off+3]))
		value := off + 3
		if value+n > len(header) {
			return fmt.Errorf("%w: v2 TLV 0x%02x at byte %d: length %d overruns the header", ErrInvalid, typ, off, n)
		}
		if typ == tlvCRC32C {
			if n != 4 {
				return fmt.Errorf("%w: v2 CRC32C TLV of %d bytes, want 4", ErrInvalid, n)
			}
			want := binary.BigEndian.Uint32(header[value:])
			// The checksum covers the whole header with its own field zeroed.
			sum := crc32.Update(0, castagnoli, header[:value])
			sum = crc32.Update(sum, castagnoli, zeroCRC[:])
			sum = crc32.Update(sum, castagnoli, header[value+4:])
			if sum != want {
				return fmt.Errorf("%w: v2 CRC32C is %08x, the header sums to %08x", ErrInvalid, want, sum)
			}
		}
		off = value + n
	}
	return nil
}

// addrPair holds both addresses of a header and their IP bytes, so a parse
// allocates once.
type addrPair struct {
	src, dst net.TCPAddr
	ips      [32]byte
}

func newAddrs(src, dst netip.Addr, sport, dport uint16) (*net.TCPAddr, *net.TCPAddr) {
	p := new(addrPair)
	p.src = net.TCPAddr{IP: putIP(p.ips[:16], src), Port: int(sport)}
	p.dst = net.TCPAddr{IP: putIP(p.ips[16:], dst), Port: int(dport)}
	return &p.src, &p.dst
}

// putIP stores ip in buf (16 bytes) and returns it as a net.IP of 4 or 16
// bytes, capped so an append cannot spill into the neighbour.
func putIP(buf []byte, ip netip.Addr) net.IP {
	if ip.Is4() {
		a := ip.As4()
		return net.IP(buf[:copy(buf, a[:]):4])
	}
	a := ip.As16()
	return net.IP(buf[:copy(buf, a[:]):16])
}
