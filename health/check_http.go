package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
)

// DefaultHTTPPath and DefaultExpectedStatus are the http/https defaults.
const DefaultHTTPPath = "/health"

var defaultExpectedStatus = []int{http.StatusOK, http.StatusNoContent}

// httpChecker sends one GET per check on a fresh connection with
// "Connection: close" and reads the response with net/http's parser. It
// keeps no connection pool and starts no goroutine: the whole exchange runs
// in Check under the context's deadline, and nothing outlives it.
// Redirects are not followed: a 3xx is judged like any other status.
type httpChecker struct {
	dialer
	tls        bool
	skipVerify bool
	path       string
	expected   []int
	expectBody string
}

func newHTTPChecker(d dialer, s CheckSettings) (*httpChecker, error) {
	c := &httpChecker{
		dialer:     d,
		tls:        s.Type == TypeHTTPS,
		skipVerify: s.TLSSkipVerify,
		path:       s.Path,
		expected:   slices.Clone(s.ExpectedStatus),
		expectBody: s.ExpectBody,
	}
	if c.path == "" {
		c.path = DefaultHTTPPath
	}
	if !strings.HasPrefix(c.path, "/") || strings.ContainsAny(c.path, " \r\n") {
		return nil, fmt.Errorf("health: http check path %q must start with / and hold no space or line break", c.path)
	}
	if len(c.expected) == 0 {
		c.expected = defaultExpectedStatus
	}
	for _, code := range c.expected {
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("health: expected HTTP status %d out of range 100..599", code)
		}
	}
	return c, nil
}

func (c *httpChecker) Check(ctx context.Context, addr string) error {
	conn, target, err := c.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer closeReset(conn)
	defer watch(ctx, conn)()
	if c.tls {
		host, _, _ := net.SplitHostPort(target) // dial succeeded, so target is host:port
		tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: c.skipVerify, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			return ioError(ctx, "TLS handshake with "+target, err)
		}
		conn = tc
	}
	req := make([]byte, 0, 128+len(c.path)+len(addr))
	req = fmt.Appendf(req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: balance-l4-health\r\nAccept: */*\r\nConnection: close\r\n\r\n", c.path, addr)
	if _, err := conn.Write(req); err != nil {
		return ioError(ctx, "sending HTTP request to "+target, err)
	}
	if err := c.judge(conn); err != nil {
		return ioError(ctx, fmt.Sprintf("GET %s from %s", c.path, target), err)
	}
	return nil
}

// judge reads one HTTP response from r and checks it against the settings.
// It is apart from Check so the parsing can be fuzzed without a network.
func (c *httpChecker) judge(r io.Reader) error {
	resp, err := http.ReadResponse(bufio.NewReaderSize(r, 4096), nil)
	if err != nil {
		return fmt.Errorf("reading HTTP response: %w", err)
	}
	defer resp.Body.Close()
	var body []byte
	if c.expectBody != "" {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxReply))
		if err != nil {
			return fmt.Errorf("reading HTTP body: %w", err)
		}
	}
	return checkHTTPResponse(resp.StatusCode, body, c.expected, c.expectBody)
}

// checkHTTPResponse judges a response: its status must be one of expected
// (empty means 200 or 204) and body must contain expectBody when it is set.
func checkHTTPResponse(status int, body []byte, expected []int, expectBody string) error {
	if len(expected) == 0 {
		expected = defaultExpectedStatus
	}
	if !slices.Contains(expected, status) {
		return fmt.Errorf("status %d, want one of %v: %w", status, expected, ErrServerRefused)
	}
	if expectBody != "" && !bytes.Contains(body, []byte(expectBody)) {
		return fmt.Errorf("body does not contain %q (got %s): %w", expectBody, quote(body), ErrUnexpectedReply)
	}
	return nil
}
