package proxyproto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// v2 builds a v2 header by hand: signature, version/command, family, the
// length of body, body.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	joined := bytes.Join(body, nil)
	b := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(joined)))
	return append(b, joined...)
}

func ip4(s string) []byte  { return net.ParseIP(s).To4() }
func ip16(s string) []byte { return net.ParseIP(s).To16() }
func port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }
func tlv(typ byte, value []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(value))), value...)
}

// withCRC fills the 4-byte value of the CRC32C TLV at the end of h.
func withCRC(h []byte) []byte {
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli)) // field still zero
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// awsHeader is a v2 header as an AWS Network Load Balancer sends it through a
// VPC endpoint: TCP over IPv4, a CRC32C TLV, the endpoint id (type 0xEA) and
// NOOP padding.
var awsHeader = mustHex("0d0a0d0a 000d0a51 5549540a 21110054 ac1f0771 ac1f0a1f c8f20050" +
	"030004e8 d6892dea 00170176 7063652d 30386432 62663135 66616335 30303163 39040024" +
	"00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000")

func TestParseValid(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		want     Header
		wantSize int // 0: all of in
	}{
		{name: "v1 TCP4, the specification's example",
			in:   []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
			want: Header{1, Proxy, tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443")}},
		{name: "v1 TCP6",
			in:   []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
			want: Header{1, Proxy, tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443")}},
		{name: "v1 TCP6 with IPv4-mapped addresses",
			in:   []byte("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1 2\r\n"),
			want: Header{1, Proxy, tcpAddr("192.0.2.1:1"), tcpAddr("192.0.2.2:2")}},
		{name: "v1 UNKNOWN",
			in:   []byte("PROXY UNKNOWN\r\n"),
			want: Header{Version: 1, Command: Local}},
		{name: "v1 UNKNOWN with the longest line, 107 bytes",
			in:   []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			want: Header{Version: 1, Command: Local}},
		{name: "v1 followed by data",
			in:       []byte("PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\nGET / HTTP/1.1\r\n"),
			want:     Header{1, Proxy, tcpAddr("10.0.0.1:0"), tcpAddr("10.0.0.2:65535")},
			wantSize: 38},
		{name: "v2 PROXY TCP4",
			in:   v2(0x21, 0x11, ip4("192.168.0.1"), ip4("192.168.0.11"), port(56324), port(443)),
			want: Header{2, Proxy, tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443")}},
		{name: "v2 PROXY TCP6",
			in:   v2(0x21, 0x21, ip16("2001:db8::1"), ip16("2001:db8::2"), port(56324), port(443)),
			want: Header{2, Proxy, tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443")}},
		{name: "v2 LOCAL",
			in:   v2(0x20, 0x00),
			want: Header{Version: 2, Command: Local}},
		{name: "v2 LOCAL with addresses to ignore",
			in:   v2(0x20, 0x11, ip4("127.0.0.1"), ip4("127.0.0.1"), port(1), port(2)),
			want: Header{Version: 2, Command: Local}},
		{name: "v2 PROXY UNSPEC: use the connection's addresses",
			in:   v2(0x21, 0x00),
			want: Header{Version: 2, Command: Proxy}},
		{name: "v2 TCP4 with TLVs: ALPN, authority, NOOP",
			in: v2(0x21, 0x11, ip4("203.0.113.5"), ip4("198.51.100.1"), port(40000), port(5432),
				tlv(0x01, []byte("h2")), tlv(0x02, []byte("db.example.com")), tlv(0x04, make([]byte, 7))),
			want: Header{2, Proxy, tcpAddr("203.0.113.5:40000"), tcpAddr("198.51.100.1:5432")}},
		{name: "v2 TCP6 with a correct CRC32C",
			in: withCRC(v2(0x21, 0x21, ip16("2001:db8::7"), ip16("2001:db8::8"), port(1), port(2),
				tlv(0x02, []byte("x")), tlv(0x03, make([]byte, 4)))),
			want: Header{2, Proxy, tcpAddr("[2001:db8::7]:1"), tcpAddr("[2001:db8::8]:2")}},
		{name: "v2 from an AWS NLB, CRC32C and endpoint id",
			in:   awsHeader,
			want: Header{2, Proxy, tcpAddr("172.31.7.113:51442"), tcpAddr("172.31.10.31:80")}},
		{name: "v2 UDP4: no TCP address",
			in:   v2(0x21, 0x12, ip4("192.0.2.1"), ip4("192.0.2.2"), port(53), port(53)),
			want: Header{Version: 2, Command: Proxy}},
		{name: "v2 UNIX stream: no TCP address",
			in:   v2(0x21, 0x31, make([]byte, 216)),
			want: Header{Version: 2, Command: Proxy}},
		{name: "v2 followed by data",
			in:       append(v2(0x21, 0x11, ip4("1.2.3.4"), ip4("5.6.7.8"), port(9), port(10)), "\x16\x03\x01"...),
			want:     Header{2, Proxy, tcpAddr("1.2.3.4:9"), tcpAddr("5.6.7.8:10")},
			wantSize: 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			wantSize := tt.wantSize
			if wantSize == 0 {
				wantSize = len(tt.in)
			}
			if n != wantSize {
				t.Errorf("Parse consumed %d bytes, want %d", n, wantSize)
			}
			if !sameHeader(h, tt.want) {
				t.Errorf("Parse = %+v, want %+v", h, tt.want)
			}
			if h.Source != nil && tt.want.Source.IP.To4() != nil && !bytes.HasPrefix(tt.in, []byte("PROXY TCP6")) &&
				(len(h.Source.IP) != 4 || len(h.Destination.IP) != 4) {
				t.Errorf("IPv4 addresses as %d and %d bytes, want 4", len(h.Source.IP), len(h.Destination.IP))
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tcp4 := func(body ...[]byte) []byte { return v2(0x21, 0x11, body...) }
	addrs4 := [][]byte{ip4("1.2.3.4"), ip4("5.6.7.8"), port(1), port(2)}
	badCRC := withCRC(tcp4(append(addrs4, tlv(0x03, make([]byte, 4)))...))
	badCRC[len(badCRC)-1] ^= 1
	overflow := v2(0x21, 0x11)
	binary.BigEndian.PutUint16(overflow[14:], MaxV2Size)

	tests := []struct {
		name      string
		in        []byte
		wantErr   string // in the message
		truncated bool   // also io.ErrUnexpectedEOF
	}{
		{"v1 unknown protocol", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), `protocol "UDP4"`, false},
		{"v1 lower-case protocol", []byte("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), `protocol "tcp4"`, false},
		{"v1 UNKNOWN glued to text", []byte("PROXY UNKNOWNX\r\n"), `protocol "UNKNOWNX"`, false},
		{"v1 too few fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "3 fields", false},
		{"v1 no fields", []byte("PROXY TCP4\r\n"), "0 fields", false},
		{"v1 too many fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), "5 fields", false},
		{"v1 double space", []byte("PROXY TCP4 1.2.3.4  5.6.7.8 1\r\n"), `destination address "" is not an IP`, false},
		{"v1 bad source address", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), `source address "1.2.3"`, false},
		{"v1 IPv4 octet with leading zero", []byte("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), `source address "1.2.3.04"`, false},
		{"v1 host name", []byte("PROXY TCP4 example.com 5.6.7.8 1 2\r\n"), `source address "example.com"`, false},
		{"v1 IPv6 under TCP4", []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), `"::1" is not IPv4`, false},
		{"v1 IPv4 under TCP6", []byte("PROXY TCP6 ::1 5.6.7.8 1 2\r\n"), `"5.6.7.8" is not IPv6`, false},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), `"fe80::1%eth0" is not an IP`, false},
		{"v1 port too large", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), `source port "65536"`, false},
		{"v1 negative port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), `source port "-1"`, false},
		{"v1 port with leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 0443\r\n"), `destination port "0443"`, false},
		{"v1 port with a sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), `source port "+1"`, false},
		{"v1 stray CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"), `destination port "2\r"`, false},
		{"v1 LF without CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "truncated v1 line", true},
		{"v1 line longer than 107 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n"), "no CRLF within 107 bytes", false},
		{"v1 truncated", []byte("PROXY TCP4 1.2.3.4"), "truncated v1 line", true},
		{"v2 truncated fixed part", tcp4(addrs4...)[:15], "truncated v2 header", true},
		{"v2 truncated addresses", tcp4(addrs4...)[:20], "truncated v2 header: 20 of at least 28", true},
		{"signature prefix only", []byte("\r\n\r\n\x00"), "truncated signature", true},
		{"v2 version 1", v2(0x11, 0x11, addrs4...), "version nibble 1", false},
		{"v2 version 3", v2(0x31, 0x11, addrs4...), "version nibble 3", false},
		{"v2 unknown command", v2(0x22, 0x11, addrs4...), "command 2", false},
		{"v2 bad address family", v2(0x21, 0x41, addrs4...), "family and transport byte 0x41", false},
		{"v2 bad transport", v2(0x21, 0x13, addrs4...), "family and transport byte 0x13", false},
		{"v2 family with unspecified transport", v2(0x21, 0x10, addrs4...), "family and transport byte 0x10", false},
		{"v2 length shorter than IPv4 addresses", tcp4(ip4("1.2.3.4"), ip4("5.6.7.8")), "length 8 is shorter than the 12 bytes", false},
		{"v2 length shorter than IPv6 addresses", v2(0x21, 0x21, make([]byte, 20)), "length 20 is shorter than the 36 bytes", false},
		{"v2 length overflow", overflow, "length 2048 exceeds the 2032-byte limit", false},
		{"v2 TLV overruns the header", tcp4(append(addrs4, []byte{0x02, 0x00, 0x09, 'a'})...), "TLV 0x02 at byte 28: length 9 overruns", false},
		{"v2 trailing byte after TLVs", tcp4(append(addrs4, tlv(0x04, nil), []byte{0})...), "1 bytes left", false},
		{"v2 CRC32C mismatch", badCRC, "CRC32C is", false},
		{"v2 CRC32C of wrong size", tcp4(append(addrs4, tlv(0x03, make([]byte, 3)))...), "CRC32C TLV of 3 bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse(tt.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %+v, %d, %v; want an ErrInvalid error", h, n, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tt.truncated {
				t.Errorf("error %q: wrapping io.ErrUnexpectedEOF is %v, want %v", err, !tt.truncated, tt.truncated)
			}
			if n != 0 || h != (Header{}) {
				t.Errorf("failed Parse returned %+v, %d", h, n)
			}
		})
	}
}

func TestParseNoHeader(t *testing.T) {
	for _, in := range []string{"GET / HTTP/1.1\r\n", "PROXY\r\n", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "\r\n\r\n\x00\r\nQUIT\r", "\x16\x03\x01\x02\x00", "\x00"} {
		if _, _, err := Parse([]byte(in)); !errors.Is(err, ErrNoHeader) {
			t.Errorf("Parse(%q) error = %v, want ErrNoHeader", in, err)
		}
	}
	if _, _, err := Parse(nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Parse(nil) error = %v, want truncated", err)
	}
}

func TestParseAllocatesOnlyTheAddresses(t *testing.T) {
	tests := []struct {
		in   []byte
		want float64
	}{
		{[]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), 1},
		{[]byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"), 1},
		{[]byte("PROXY UNKNOWN\r\n"), 0},
		{awsHeader, 1},
		{v2(0x21, 0x21, ip16("2001:db8::1"), ip16("2001:db8::2"), port(1), port(2)), 1},
		{AppendV2Local(nil), 0},
	}
	for _, tt := range tests {
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := Parse(tt.in); err != nil {
				panic(err)
			}
		})
		if allocs != tt.want {
			t.Errorf("Parse(%q): %.1f allocs, want %.0f", tt.in, allocs, tt.want)
		}
	}
}
