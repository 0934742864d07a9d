package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// maxGreeting bounds a MySQL greeting; real ones are about 100 bytes.
const maxGreeting = 16 << 10

// mysqlChecker reads the server's initial handshake packet and closes: the
// server speaks first, so no credentials are needed. Beware MySQL's
// max_connect_errors: a server that sees only such aborted handshakes from a
// host, with no successful login in between, may block it (MariaDB and MySQL
// do not count loopback clients).
type mysqlChecker struct{ dialer }

func (c *mysqlChecker) Check(ctx context.Context, addr string) error {
	conn, target, err := c.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer closeReset(conn)
	defer watch(ctx, conn)()
	err = readReply(ctx, conn, target, "a MySQL greeting", func(b []byte) error {
		_, err := parseMySQLGreeting(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("mysql check of %s: %w", target, err)
	}
	return nil
}

// parseMySQLGreeting reads the initial handshake packet: a 3-byte little-endian
// payload length, sequence 0, then protocol version 10 and the NUL-terminated
// server version. An ERR packet (0xff, a 2-byte code, an optional #SQLSTATE,
// a message), as sent by a server with too many connections or that blocks
// the host, is a refusal with its message.
func parseMySQLGreeting(b []byte) (version string, err error) {
	if len(b) < 4 {
		return "", errIncomplete
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if n == 0 || n > maxGreeting || b[3] != 0 {
		return "", fmt.Errorf("reply %s is not a MySQL greeting packet: %w", quote(b), ErrUnexpectedReply)
	}
	if len(b) < 4+n {
		return "", errIncomplete
	}
	if len(b) > 4+n {
		return "", fmt.Errorf("greeting %s is followed by more bytes: %w", quote(b), ErrUnexpectedReply)
	}
	p := b[4:]
	switch p[0] {
	case 10:
		end := bytes.IndexByte(p[1:], 0)
		if end <= 0 {
			return "", fmt.Errorf("greeting %s has no server version: %w", quote(b), ErrUnexpectedReply)
		}
		return string(p[1 : 1+end]), nil
	case 0xff:
		if len(p) < 3 {
			return "", fmt.Errorf("error packet %s is too short: %w", quote(b), ErrUnexpectedReply)
		}
		code := binary.LittleEndian.Uint16(p[1:3])
		msg := p[3:]
		if len(msg) >= 6 && msg[0] == '#' {
			msg = msg[6:]
		}
		return "", fmt.Errorf("server error %d: %s: %w", code, msg, ErrServerRefused)
	}
	return "", fmt.Errorf("greeting %s has protocol version %d, want 10: %w", quote(b), p[0], ErrUnexpectedReply)
}
