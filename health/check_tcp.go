package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// tcpChecker connects; with send it writes, with expect it reads until the
// reply contains expect (at most 64 KiB, until the deadline).
type tcpChecker struct {
	dialer
	send   []byte
	expect string
	// connectOnly: no send, no expect, no caller's Dialer, so an IP
	// literal is checked by connectCheck, without net.Dialer.
	connectOnly bool
}

func (c *tcpChecker) Check(ctx context.Context, addr string) error {
	if c.connectOnly {
		if ap, ok := c.connectTarget(addr); ok {
			return connectCheck(ctx, ap)
		}
	}
	return c.exchange(ctx, addr)
}

// exchange is the check through net.Dialer. It is a function of its own so
// that its large stack frame is not part of Check's: a check runs in a new
// goroutine, whose small stack connectCheck then fits without growing.
func (c *tcpChecker) exchange(ctx context.Context, addr string) error {
	conn, target, err := c.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer watch(ctx, conn)()
	if len(c.send) > 0 {
		if _, err := conn.Write(c.send); err != nil {
			closeReset(conn)
			return ioError(ctx, "sending to "+target, err)
		}
	}
	if c.expect == "" {
		if len(c.send) > 0 {
			_ = conn.Close() // a plain close, so the bytes sent still go out
		} else {
			closeReset(conn)
		}
		return nil
	}
	defer closeReset(conn)
	expect := []byte(c.expect)
	got, err := readUntil(conn, make([]byte, 0, 512), func(b []byte) bool { return bytes.Contains(b, expect) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s closed the connection before sending %q (got %s): %w", target, c.expect, quote(got), ErrUnexpectedReply)
	case errors.Is(err, errReplyTooLong):
		return fmt.Errorf("no %q in the first %d bytes from %s: %w", c.expect, maxReply, target, ErrUnexpectedReply)
	}
	return ioError(ctx, fmt.Sprintf("waiting for %q from %s (got %s)", c.expect, target, quote(got)), err)
}
