package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"time"
)

// Errors a check wraps, so callers can tell a dead backend from one that
// answers wrongly.
var (
	// ErrUnknownType: NewChecker was given a type it does not know.
	ErrUnknownType = errors.New("health: unknown check type")
	// ErrUnexpectedReply: the backend answered, but not as the protocol or
	// the expectation says (a wrong protocol, an Expect that did not match).
	ErrUnexpectedReply = errors.New("health: unexpected reply")
	// ErrServerRefused: the backend speaks the protocol but says it cannot
	// serve (a MySQL ERR packet, Redis -LOADING, an HTTP status not expected).
	ErrServerRefused = errors.New("health: server refused")
)

// maxReply bounds what a check reads from a backend.
const maxReply = 64 << 10

// Checker probes one backend.
type Checker interface {
	// Check probes addr (the backend's host:port; the checker applies its
	// Port override). It returns nil when healthy, else an error that says
	// why in words. It gives up when ctx is done.
	Check(ctx context.Context, addr string) error
}

// The check types (SPEC §2 health_check.type).
const (
	TypeTCP      = "tcp"
	TypeHTTP     = "http"
	TypeHTTPS    = "https"
	TypePostgres = "postgres"
	TypeMySQL    = "mysql"
	TypeRedis    = "redis"
)

// CheckSettings configures a Checker. Zero values mean the defaults noted.
type CheckSettings struct {
	Type           string // tcp | http | https | postgres | mysql | redis; "" means tcp
	Path           string // http/https; "" means "/health"
	ExpectedStatus []int  // http/https; empty means [200, 204]
	ExpectBody     string // http/https: the body must contain it
	Send           []byte // tcp: written after connecting
	Expect         string // tcp: the reply must contain it
	Port           int    // 0 = the backend's own port
	TLSSkipVerify  bool   // https
	// Dialer connects; nil means a net.Dialer without TCP keep-alive, except
	// for a tcp check without Send and Expect of an IP literal, which then
	// makes its own system calls (connectCheck, internal/rawconnect): an
	// IPv4-mapped address (::ffff:10.0.0.1) gets an IPv4 socket there, as
	// net.Dialer gives it.
	Dialer *net.Dialer
}

// NewChecker returns the Checker for s.Type.
func NewChecker(s CheckSettings) (Checker, error) {
	if s.Port < 0 || s.Port > 65535 {
		return nil, fmt.Errorf("health: check port %d out of range 0..65535", s.Port)
	}
	d := dialer{port: s.Port, d: s.Dialer}
	if d.d == nil {
		// A check's connection lives for one exchange: keep-alive probes
		// would only cost four setsockopt calls per check.
		d.d = &net.Dialer{KeepAlive: -1}
	}
	switch s.Type {
	case TypeTCP, "":
		c := &tcpChecker{dialer: d, send: slices.Clone(s.Send), expect: s.Expect}
		// A Dialer given by the caller may bind, mark or trace: keep it.
		c.connectOnly = len(s.Send) == 0 && s.Expect == "" && s.Dialer == nil
		return c, nil
	case TypeHTTP, TypeHTTPS:
		return newHTTPChecker(d, s)
	case TypePostgres:
		return &postgresChecker{dialer: d}, nil
	case TypeMySQL:
		return &mysqlChecker{dialer: d}, nil
	case TypeRedis:
		return &redisChecker{dialer: d}, nil
	}
	return nil, fmt.Errorf("%w %q (want tcp, http, https, postgres, mysql or redis)", ErrUnknownType, s.Type)
}

// dialer connects to a backend, with the check's port override, and ties
// the connection's deadline to the context.
type dialer struct {
	port int
	d    *net.Dialer
}

// target is the address to probe for a backend at addr.
func (d dialer) target(addr string) (string, error) {
	if d.port == 0 {
		return addr, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("splitting backend address %q: %w", addr, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(d.port)), nil
}

// dial connects to the probed address (returned too, for messages) and sets
// the connection's deadline from ctx.
func (d dialer) dial(ctx context.Context, addr string) (net.Conn, string, error) {
	target, err := d.target(addr)
	if err != nil {
		return nil, "", err
	}
	conn, err := d.d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, target, err // net.OpError says "dial tcp ADDR: ..."
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return conn, target, nil
}

// watch unblocks conn's I/O when ctx is cancelled before its deadline (a
// monitor that stops); the returned func stops watching.
func watch(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}

// closeReset closes conn with a reset (SO_LINGER 0) so that checks leave no
// TIME_WAIT sockets behind, as HAProxy does for its checks. Only for
// connections whose every byte sent was answered: a reset discards unsent data.
func closeReset(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// readReply reads a reply until parse stops answering errIncomplete, and
// returns parse's verdict on it; what names the awaited reply in messages.
func readReply(ctx context.Context, conn net.Conn, target, what string, parse func([]byte) error) error {
	got, err := readUntil(conn, make([]byte, 0, 512), func(b []byte) bool {
		return !errors.Is(parse(b), errIncomplete)
	})
	switch {
	case err == nil:
		return parse(got)
	case errors.Is(err, io.EOF) && len(got) == 0:
		return fmt.Errorf("%s closed the connection without sending %s: %w", target, what, ErrUnexpectedReply)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s closed the connection in the middle of %s %s: %w", target, what, quote(got), ErrUnexpectedReply)
	case errors.Is(err, errReplyTooLong):
		return fmt.Errorf("%s sent more than %d bytes without completing %s: %w", target, maxReply, what, ErrUnexpectedReply)
	}
	return ioError(ctx, fmt.Sprintf("waiting for %s from %s", what, target), err)
}

// errIncomplete is what a reply parser says when it needs more bytes.
var errIncomplete = errors.New("health: incomplete reply")

// ioError explains a failed read or write: a done context says why the
// check gave up (it hit its timeout), else the I/O error itself.
func ioError(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	// The connection's deadline is the context's and may fire a moment
	// before the context's own timer does.
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// readUntil reads into buf until done(buf) is true, the peer closes, maxReply
// bytes arrived or the deadline passes. It returns what it read; err is nil
// only when done said so.
func readUntil(conn net.Conn, buf []byte, done func([]byte) bool) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxReply {
				return buf, errReplyTooLong
			}
			buf = slices.Grow(buf, min(cap(buf), maxReply-cap(buf)))
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if done(buf) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var errReplyTooLong = fmt.Errorf("reply longer than %d bytes", maxReply)

// quote shows the start of a reply in an error message.
func quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
