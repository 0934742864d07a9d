package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// sslRequest is PostgreSQL's SSLRequest message: length 8, code 80877103.
// Every server since 7.2 answers it with one byte, S or N, before any
// authentication, so it proves a live postmaster without credentials.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

type postgresChecker struct{ dialer }

func (c *postgresChecker) Check(ctx context.Context, addr string) error {
	conn, target, err := c.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer closeReset(conn)
	defer watch(ctx, conn)()
	if _, err := conn.Write(sslRequest); err != nil {
		return ioError(ctx, "sending SSLRequest to "+target, err)
	}
	if err := readReply(ctx, conn, target, "a reply to SSLRequest", parsePostgresSSLReply); err != nil {
		return fmt.Errorf("postgres check of %s: %w", target, err)
	}
	return nil
}

// parsePostgresSSLReply judges the reply to an SSLRequest: S or N is a live
// server; an ErrorResponse ('E') is a server that refuses, with its message.
func parsePostgresSSLReply(b []byte) error {
	if len(b) == 0 {
		return errIncomplete
	}
	switch b[0] {
	case 'S', 'N':
		if len(b) > 1 { // the server waits for us after its one byte
			return fmt.Errorf("reply %s is longer than one byte: %w", quote(b), ErrUnexpectedReply)
		}
		return nil
	case 'E':
		return parsePostgresError(b)
	}
	return fmt.Errorf("reply %s is not a PostgreSQL answer to SSLRequest: %w", quote(b), ErrUnexpectedReply)
}

// parsePostgresError reads an ErrorResponse: 'E', an int32 length that counts
// itself, then fields (a type byte and a NUL-terminated string) up to a NUL.
func parsePostgresError(b []byte) error {
	if len(b) < 5 {
		return errIncomplete
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 5 || n > maxReply {
		return fmt.Errorf("reply %s is not a PostgreSQL message: %w", quote(b), ErrUnexpectedReply)
	}
	if len(b) < int(n)+1 {
		return errIncomplete
	}
	var severity, code, message string
	for f := b[5 : n+1]; len(f) > 0 && f[0] != 0; {
		end := bytes.IndexByte(f[1:], 0)
		if end < 0 {
			return fmt.Errorf("error response %s has an unterminated field: %w", quote(b), ErrUnexpectedReply)
		}
		val := string(f[1 : 1+end])
		switch f[0] {
		case 'S':
			severity = val
		case 'C':
			code = val
		case 'M':
			message = val
		}
		f = f[2+end:]
	}
	if message == "" {
		return fmt.Errorf("error response %s without a message: %w", quote(b), ErrServerRefused)
	}
	return fmt.Errorf("server error %s %s: %s: %w", severity, code, message, ErrServerRefused)
}
