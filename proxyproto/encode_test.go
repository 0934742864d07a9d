package proxyproto

import (
	"bytes"
	"encoding/hex"
	"net"
	"testing"
)

func tcpAddr(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestAppendV1(t *testing.T) {
	tests := []struct {
		name     string
		src, dst *net.TCPAddr
		want     string
	}{
		{"IPv4", tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443"), "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
		{"IPv4 in 16-byte form", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 65535}, "PROXY TCP4 10.0.0.1 10.0.0.2 1 65535\r\n"},
		{"IPv6", tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443"), "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"},
		{"mixed: IPv4 mapped into IPv6", tcpAddr("192.0.2.7:1000"), tcpAddr("[2001:db8::2]:443"), "PROXY TCP6 ::ffff:192.0.2.7 2001:db8::2 1000 443\r\n"},
		{"nil source", nil, tcpAddr("192.168.0.11:443"), "PROXY UNKNOWN\r\n"},
		{"no IP", &net.TCPAddr{Port: 80}, tcpAddr("192.168.0.11:443"), "PROXY UNKNOWN\r\n"},
		{"port out of range", tcpAddr("192.168.0.1:1"), &net.TCPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 70000}, "PROXY UNKNOWN\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendV1([]byte("xx"), tt.src, tt.dst)
			if string(got) != "xx"+tt.want {
				t.Fatalf("AppendV1 = %q, want %q", got, "xx"+tt.want)
			}
		})
	}
}

func TestAppendV2(t *testing.T) {
	const sig = "0d0a0d0a000d0a515549540a"
	tests := []struct {
		name     string
		src, dst *net.TCPAddr
		want     string // hex after the signature
	}{
		{"IPv4", tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443"),
			"21" + "11" + "000c" + "c0a80001" + "c0a8000b" + "dc04" + "01bb"},
		{"IPv6", tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443"),
			"21" + "21" + "0024" + "20010db8000000000000000000000001" + "20010db8000000000000000000000002" + "dc04" + "01bb"},
		{"mixed", tcpAddr("192.0.2.7:1000"), tcpAddr("[2001:db8::2]:443"),
			"21" + "21" + "0024" + "00000000000000000000ffffc0000207" + "20010db8000000000000000000000002" + "03e8" + "01bb"},
		{"no address: PROXY UNSPEC", nil, nil, "21" + "00" + "0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(AppendV2(nil, tt.src, tt.dst))
			if got != sig+tt.want {
				t.Fatalf("AppendV2 = %s, want %s", got, sig+tt.want)
			}
		})
	}
	if got := hex.EncodeToString(AppendV2Local(nil)); got != sig+"20"+"00"+"0000" {
		t.Fatalf("AppendV2Local = %s", got)
	}
}

func TestAppendAllocatesNothing(t *testing.T) {
	src, dst := tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8:ffff:ffff:ffff:ffff:ffff:2]:443")
	buf := make([]byte, 0, MaxV1Size)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendV1(buf[:0], src, dst)
		buf = AppendV2(buf[:0], src, dst)
		buf = AppendV2Local(buf[:0])
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs, want 0", allocs)
	}
}

func TestRoundTrip(t *testing.T) {
	pairs := [][2]*net.TCPAddr{
		{tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443")},
		{tcpAddr("0.0.0.0:0"), tcpAddr("255.255.255.255:65535")},
		{tcpAddr("[2001:db8::1]:56324"), tcpAddr("[2001:db8::2]:443")},
		{tcpAddr("[::]:0"), tcpAddr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")},
	}
	for _, p := range pairs {
		for _, enc := range []struct {
			version int
			append  func([]byte, *net.TCPAddr, *net.TCPAddr) []byte
		}{{1, AppendV1}, {2, AppendV2}} {
			b := enc.append(nil, p[0], p[1])
			trailer := []byte("payload")
			h, n, err := Parse(append(b, trailer...))
			if err != nil {
				t.Fatalf("v%d %v -> %v: Parse: %v", enc.version, p[0], p[1], err)
			}
			want := Header{Version: enc.version, Command: Proxy, Source: p[0], Destination: p[1]}
			if n != len(b) || !sameHeader(h, want) {
				t.Fatalf("v%d round trip: got %+v (%d bytes), want %+v (%d bytes)", enc.version, h, n, want, len(b))
			}
			got, err := Read(bytes.NewReader(b))
			if err != nil || !sameHeader(got, want) {
				t.Fatalf("v%d Read: %+v, %v", enc.version, got, err)
			}
		}
	}
}

// sameHeader compares headers, IPs by value (4- and 16-byte IPv4 forms match).
func sameHeader(a, b Header) bool {
	return a.Version == b.Version && a.Command == b.Command &&
		sameAddr(a.Source, b.Source) && sameAddr(a.Destination, b.Destination)
}

func sameAddr(a, b *net.TCPAddr) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.IP.Equal(b.IP) && a.Port == b.Port && a.Zone == b.Zone
}
