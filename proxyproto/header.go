package proxyproto

import (
	"errors"
	"net"
	"strconv"
)

// Header is what a PROXY header carries.
type Header struct {
	Version int     // 1 or 2
	Command Command // Proxy, or Local (v2 LOCAL, and v1 UNKNOWN)
	// Source is the client's address and Destination the address it connected
	// to. Both are nil when the header carries no TCP address: LOCAL, v1
	// UNKNOWN, and v2 families that are not TCP over IPv4 or IPv6 (UNSPEC, UNIX,
	// UDP), which the specification lets a receiver treat as UNSPEC. The caller
	// then uses the connection's own addresses. An IPv4 address has a 4-byte IP.
	Source, Destination *net.TCPAddr
}

// Command says whether a header relays a client's connection.
type Command byte

const (
	// Local marks a connection the sender made on its own behalf (a health
	// check); its addresses, if any, are to be ignored.
	Local Command = 0
	// Proxy marks a relayed connection; the addresses are the client's.
	Proxy Command = 1
)

func (c Command) String() string {
	switch c {
	case Local:
		return "LOCAL"
	case Proxy:
		return "PROXY"
	}
	return "Command(" + strconv.Itoa(int(c)) + ")"
}

// Size limits. A v1 line is at most 107 bytes with its CRLF (the
// specification's bound). A v2 header may declare up to 64 KiB, but one that
// carries addresses and the usual TLVs (checksum, ALPN, authority, TLS details,
// cloud endpoint ids) stays far below MaxV2Size; larger ones are refused.
const (
	MaxV1Size = 107
	MaxV2Size = 2048
)

var (
	// ErrNoHeader means the stream does not start with a PROXY signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY header")
	// ErrInvalid means the stream starts with a PROXY signature but the header
	// is malformed, truncated or unsupported; the wrapping error says what.
	ErrInvalid = errors.New("proxyproto: invalid PROXY header")
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
	crlf  = []byte("\r\n")
)

// minHeaderSize is the shortest header of either version: "PROXY UNKNOWN\r\n".
// (A v2 header is at least 16 bytes.)
const minHeaderSize = 15

// v2 fixed-part fields.
const (
	v2Version     = 0x20 // high nibble of byte 12
	famUnspec     = 0x00
	famTCP4       = 0x11
	famUDP4       = 0x12
	famTCP6       = 0x21
	famUDP6       = 0x22
	famUnixStream = 0x31
	famUnixDgram  = 0x32
	tlvCRC32C     = 0x03
)

// v2AddrLen is the size of the address block of a v2 family byte.
func v2AddrLen(fam byte) int {
	switch fam >> 4 {
	case 1:
		return 12
	case 2:
		return 36
	case 3:
		return 216
	}
	return 0
}
