package proxyproto

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
)

// AppendV1 appends a v1 (text) header for a connection from src to dst and
// returns the extended buffer; it allocates nothing when b has room (at most
// MaxV1Size bytes). Two IPv4 addresses give "PROXY TCP4 ..."; if either is
// IPv6, both are written as IPv6 ("PROXY TCP6 ...", an IPv4 address as
// ::ffff:a.b.c.d) so the backend still learns the client's address. An address
// that cannot be encoded (nil, an IP that is neither 4 nor 16 bytes, a port
// outside 0..65535) gives "PROXY UNKNOWN\r\n".
func AppendV1(b []byte, src, dst *net.TCPAddr) []byte {
	s, sok := addrPort(src)
	d, dok := addrPort(dst)
	if !sok || !dok {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	if s.Addr().Is4() && d.Addr().Is4() {
		b = append(b, "PROXY TCP4 "...)
	} else {
		s, d = as16(s), as16(d)
		b = append(b, "PROXY TCP6 "...)
	}
	b = s.Addr().AppendTo(b)
	b = append(b, ' ')
	b = d.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(s.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(d.Port()), 10)
	return append(b, "\r\n"...)
}

// AppendV2 appends a v2 (binary) header with the PROXY command for a TCP
// connection from src to dst, AF_INET when both addresses are IPv4 and AF_INET6
// otherwise (IPv4 mapped into IPv6, as in AppendV1). It allocates nothing when b
// has room (at most 52 bytes). If an address cannot be encoded it writes the
// PROXY command with the UNSPEC family and no address, which tells the receiver
// to use the connection's own addresses.
func AppendV2(b []byte, src, dst *net.TCPAddr) []byte {
	s, sok := addrPort(src)
	d, dok := addrPort(dst)
	b = append(b, sigV2...)
	switch {
	case !sok || !dok:
		return append(b, v2Version|byte(Proxy), famUnspec, 0, 0)
	case s.Addr().Is4() && d.Addr().Is4():
		b = append(b, v2Version|byte(Proxy), famTCP4, 0, 12)
		s4, d4 := s.Addr().As4(), d.Addr().As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	default:
		b = append(b, v2Version|byte(Proxy), famTCP6, 0, 36)
		s16, d16 := s.Addr().As16(), d.Addr().As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, s.Port())
	return binary.BigEndian.AppendUint16(b, d.Port())
}

// AppendV2Local appends a v2 header with the LOCAL command and no address: the
// connection is the sender's own (a health check), not a client's.
func AppendV2Local(b []byte) []byte {
	b = append(b, sigV2...)
	return append(b, v2Version|byte(Local), famUnspec, 0, 0)
}

// addrPort converts a *net.TCPAddr without allocating; ok is false when it
// cannot be encoded. An IPv4-mapped IPv6 address counts as IPv4, as it does for
// net.IP.To4.
func addrPort(a *net.TCPAddr) (ap netip.AddrPort, ok bool) {
	if a == nil || a.Port < 0 || a.Port > 65535 {
		return ap, false
	}
	var ip netip.Addr
	if ip4 := a.IP.To4(); ip4 != nil {
		ip = netip.AddrFrom4([4]byte(ip4))
	} else if len(a.IP) == net.IPv6len {
		ip = netip.AddrFrom16([16]byte(a.IP))
	} else {
		return ap, false
	}
	return netip.AddrPortFrom(ip, uint16(a.Port)), true
}

func as16(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}
