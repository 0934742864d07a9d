// Package sni reads the server name a TLS client asks for from the bytes it
// sends first (its ClientHello), without terminating TLS, and matches names
// against exact and wildcard patterns. It knows nothing of sockets: the
// caller reads, asks ServerName about everything read so far, and reads
// again while the answer is ErrIncomplete.
//
// Typical use:
//
//	buf := make([]byte, 0, sni.MaxHello)
//	for {
//		n, err := conn.Read(buf[len(buf):cap(buf)])
//		buf = buf[:len(buf)+n]
//		name, perr := sni.ServerName(buf)
//		if perr != sni.ErrIncomplete || err != nil || len(buf) == cap(buf) {
//			return name, perr // ... ErrNotTLS, ErrTooLarge, ErrMalformed
//		}
//	}
package sni

import "errors"

// MaxHello is the most a reader should buffer for a ClientHello: record
// headers and handshake bytes together. A ClientHello that needs more is
// ErrTooLarge. Browsers' stay under 2 KiB, post-quantum key shares included.
const MaxHello = 16 << 10

// What ServerName can say besides a name.
var (
	// ErrIncomplete: the bytes so far are the start of a ClientHello; read more.
	ErrIncomplete = errors.New("sni: incomplete ClientHello")
	// ErrNotTLS: the client does not start with a TLS handshake record.
	ErrNotTLS = errors.New("sni: not a TLS handshake")
	// ErrTooLarge: the ClientHello says it is longer than MaxHello allows.
	ErrTooLarge = errors.New("sni: ClientHello larger than 16 KiB")
	// ErrMalformed: the bytes start as TLS but are not a valid ClientHello.
	ErrMalformed = errors.New("sni: malformed ClientHello")
)

// TLS wire constants (RFC 8446 §5.1, §4; RFC 6066 §3).
const (
	recordHeaderLen     = 5
	maxRecordPayload    = 1 << 14 // TLSPlaintext.length
	contentHandshake    = 22
	typeClientHello     = 1
	extServerName       = 0
	nameTypeHostName    = 0
	handshakeHeaderLen  = 4
	maxSessionIDLen     = 32
	clientHelloFixedLen = 2 + 32 // legacy_version, random
)

// ServerName returns the host name in the server_name extension of the
// ClientHello at the start of data, as sent (callers compare it
// case-insensitively), or "" when the ClientHello has none. The ClientHello
// may be fragmented over several TLS records and data may end anywhere: it
// returns ErrIncomplete until the whole ClientHello is there. Bytes after
// the ClientHello are ignored. The other errors are final: ErrNotTLS,
// ErrTooLarge, ErrMalformed.
func ServerName(data []byte) (string, error) {
	msg, err := clientHello(data)
	if err != nil {
		return "", err
	}
	return parseClientHello(msg)
}

// clientHello reassembles the first handshake message from the records at
// the start of data and returns it, header included. It copies only when
// the message spans records.
func clientHello(data []byte) ([]byte, error) {
	var joined []byte // the payloads of the records so far, when more than one
	var msg []byte    // the handshake bytes so far
	off := 0
	for {
		rest := data[off:]
		if len(rest) == 0 {
			return nil, ErrIncomplete
		}
		if rest[0] != contentHandshake {
			return nil, notHandshake(off)
		}
		if len(rest) >= 2 && rest[1] != 3 { // TLS and SSL 3 record versions are 3.x
			return nil, notHandshake(off)
		}
		if len(rest) < recordHeaderLen {
			return nil, ErrIncomplete
		}
		n := int(rest[3])<<8 | int(rest[4])
		if n > maxRecordPayload {
			return nil, ErrMalformed
		}
		payload := rest[recordHeaderLen:]
		complete := len(payload) >= n
		if complete {
			payload = payload[:n]
		}
		switch {
		case off == 0:
			msg = payload
		case joined == nil:
			joined = append(append(make([]byte, 0, len(msg)+len(payload)), msg...), payload...)
			msg = joined
		default:
			joined = append(joined, payload...)
			msg = joined
		}
		if len(msg) >= handshakeHeaderLen {
			if msg[0] != typeClientHello {
				return nil, ErrMalformed
			}
			size := handshakeHeaderLen + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			// The fewest bytes that carry it: its records' headers and itself.
			if size+recordHeaderLen*((size+maxRecordPayload-1)/maxRecordPayload) > MaxHello {
				return nil, ErrTooLarge
			}
			if len(msg) >= size {
				return msg[:size], nil
			}
		}
		if !complete {
			return nil, ErrIncomplete
		}
		off += recordHeaderLen + n
	}
}

// notHandshake judges a record that is not a handshake record: at the start
// the client speaks something else than TLS; later it broke the
// ClientHello off.
func notHandshake(off int) error {
	if off == 0 {
		return ErrNotTLS
	}
	return ErrMalformed
}

// parseClientHello reads a complete ClientHello message (RFC 8446 §4.1.2;
// RFC 5246 §7.4.1.2, where extensions may be absent).
func parseClientHello(msg []byte) (string, error) {
	r := reader(msg[handshakeHeaderLen:])
	version, ok := r.bytes(clientHelloFixedLen)
	if !ok || version[0] != 3 {
		return "", ErrMalformed
	}
	sessionID, ok := r.vector8()
	if !ok || len(sessionID) > maxSessionIDLen {
		return "", ErrMalformed
	}
	suites, ok := r.vector16()
	if !ok || len(suites) < 2 || len(suites)%2 != 0 {
		return "", ErrMalformed
	}
	methods, ok := r.vector8()
	if !ok || len(methods) < 1 {
		return "", ErrMalformed
	}
	if len(r) == 0 {
		return "", nil // no extensions (TLS 1.2 and older may leave them out)
	}
	exts, ok := r.vector16()
	if !ok || len(r) != 0 {
		return "", ErrMalformed
	}
	name, seen := "", false
	for len(exts) > 0 {
		typ, ok1 := exts.uint16()
		data, ok2 := exts.vector16()
		if !ok1 || !ok2 {
			return "", ErrMalformed
		}
		if typ != extServerName {
			continue
		}
		if seen { // each extension at most once (RFC 8446 §4.2)
			return "", ErrMalformed
		}
		seen = true
		n, err := parseServerName(data)
		if err != nil {
			return "", err
		}
		name = n
	}
	return name, nil
}

// parseServerName reads a server_name extension's ServerNameList and
// returns its host_name, "" when it has none (RFC 6066 §3).
func parseServerName(data reader) (string, error) {
	list, ok := data.vector16()
	if !ok || len(data) != 0 || len(list) == 0 {
		return "", ErrMalformed
	}
	var host []byte
	for len(list) > 0 {
		typ, ok1 := list.uint8()
		name, ok2 := list.vector16()
		if !ok1 || !ok2 {
			return "", ErrMalformed
		}
		if typ != nameTypeHostName {
			continue
		}
		if host != nil || !validHostName(name) { // at most one name per type
			return "", ErrMalformed
		}
		host = name
	}
	return string(host), nil
}

// validHostName accepts what a DNS host name may hold: labels of letters,
// digits, '-' and '_' between single dots, one trailing dot allowed, and
// nothing that could smuggle bytes into a log line.
func validHostName(b []byte) bool {
	if len(b) > 0 && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 253 {
		return false
	}
	label := 0
	for _, c := range b {
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_':
			label++
		default:
			return false
		}
	}
	return label > 0
}

// reader takes TLS wire fields off the front of a byte slice; every method
// reports false, taking nothing, when the slice is too short.
type reader []byte

func (r *reader) bytes(n int) ([]byte, bool) {
	if len(*r) < n {
		return nil, false
	}
	b := (*r)[:n]
	*r = (*r)[n:]
	return b, true
}

func (r *reader) uint8() (uint8, bool) {
	b, ok := r.bytes(1)
	if !ok {
		return 0, false
	}
	return b[0], true
}

func (r *reader) uint16() (uint16, bool) {
	b, ok := r.bytes(2)
	if !ok {
		return 0, false
	}
	return uint16(b[0])<<8 | uint16(b[1]), true
}

// vector8 reads a vector with a one-byte length.
func (r *reader) vector8() (reader, bool) {
	save := *r
	n, ok := r.uint8()
	if !ok {
		return nil, false
	}
	b, ok := r.bytes(int(n))
	if !ok {
		*r = save
		return nil, false
	}
	return b, true
}

// vector16 reads a vector with a two-byte length.
func (r *reader) vector16() (reader, bool) {
	save := *r
	n, ok := r.uint16()
	if !ok {
		return nil, false
	}
	b, ok := r.bytes(int(n))
	if !ok {
		*r = save
		return nil, false
	}
	return b, true
}
