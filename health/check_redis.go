package health

import (
	"bytes"
	"context"
	"fmt"
)

// maxRedisLine bounds the reply line to PING.
const maxRedisLine = 4 << 10

var redisPing = []byte("PING\r\n")

// redisChecker sends PING and expects +PONG, or -NOAUTH from a server that
// wants a password (it is alive and serving, which is all a check needs).
type redisChecker struct{ dialer }

func (c *redisChecker) Check(ctx context.Context, addr string) error {
	conn, target, err := c.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer closeReset(conn)
	defer watch(ctx, conn)()
	if _, err := conn.Write(redisPing); err != nil {
		return ioError(ctx, "sending PING to "+target, err)
	}
	if err := readReply(ctx, conn, target, "a reply to PING", parseRedisPong); err != nil {
		return fmt.Errorf("redis check of %s: %w", target, err)
	}
	return nil
}

// parseRedisPong judges the first reply line to PING: +PONG or -NOAUTH is a
// live server; another error (-LOADING, -MASTERDOWN, -DENIED) refuses, with
// its message; anything else is not Redis.
func parseRedisPong(b []byte) error {
	if len(b) == 0 {
		return errIncomplete
	}
	if b[0] != '+' && b[0] != '-' {
		return fmt.Errorf("reply %s is not a Redis status or error: %w", quote(b), ErrUnexpectedReply)
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		if len(b) > maxRedisLine {
			return fmt.Errorf("reply %s has no line end: %w", quote(b), ErrUnexpectedReply)
		}
		return errIncomplete
	}
	line := b[:end]
	switch {
	case string(line) == "+PONG":
		return nil
	case bytes.HasPrefix(line, []byte("-NOAUTH")):
		return nil
	case line[0] == '-':
		return fmt.Errorf("server error %s: %w", quote(line[1:]), ErrServerRefused)
	}
	return fmt.Errorf("reply %s to PING, want +PONG: %w", quote(line), ErrUnexpectedReply)
}
