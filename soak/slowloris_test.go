package soak

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestAdminSlowloris: 50 connections to the admin server send a request
// header one byte per second. The server's header timeout frees them (each is
// closed by the server, not by us), the admin API keeps answering others, and
// the data path is unaffected meanwhile.
func TestAdminSlowloris(t *testing.T) {
	t.Parallel()
	backend := startServer(t, echo)
	svc, admin := freePort(t), freePort(t)
	startBalance(t, fmt.Sprintf(`
[admin]
listen = %q
[log]
access_log = false
[[services]]
name = "data"
listen = %q
[[services.backends]]
address = %q
`, admin, svc, backend.Addr()), admin)
	a := NewAdminClient(admin, "")

	const n = 50
	start := time.Now()
	conns := make([]net.Conn, 0, n)
	closed := make(chan time.Duration, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", admin, 5*time.Second)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /api/v1/services HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		conns = append(conns, c)
		go func() {
			// Whatever the server sends (perhaps a 408), it must then close.
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			io.Copy(io.Discard, c)
			closed <- time.Since(start)
		}()
	}

	open := n
	var last time.Duration
	for tick := 0; open > 0 && tick < 30; tick++ { // a byte a second, at most 30 s
		for _, c := range conns {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte{'a'}) // fails once the server has closed: fine
		}
		if err := dialRoundTrip(svc, fmt.Sprintf("data %d", tick)); err != nil {
			t.Errorf("data path during slowloris, second %d: %v", tick, err)
		}
		if code, _, err := a.Do(Request{Method: http.MethodGet, Path: "/api/v1/services/data", Want: []int{http.StatusOK}}); code != http.StatusOK {
			t.Errorf("admin API during slowloris, second %d: %d %v", tick, code, err)
		}
		for deadline := time.After(time.Second); open > 0; {
			select {
			case d := <-closed:
				open--
				last = d
				continue
			case <-deadline:
			}
			break
		}
	}
	if open > 0 {
		t.Fatalf("%d of %d slow connections still open after 30 s", open, n)
	}
	t.Logf("all %d slow connections closed by the server; the last after %v", n, last.Round(100*time.Millisecond))
	if last > 15*time.Second {
		t.Errorf("the last slow connection was closed after %v; the admin server's header timeout is 5s", last)
	}
}
