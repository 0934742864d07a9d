package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// Database checks against the real servers, a closed port, and a server of
// another protocol. Where the wrong server waits for more input the check
// ends at its timeout, so those cases use a short one.

func TestPostgresCheck(t *testing.T) {
	pg := postgresServer.Get(t)
	c := mustChecker(t, CheckSettings{Type: "postgres"})
	if err := check(t, c, pg.Addr, 10*time.Second); err != nil {
		t.Fatalf("postgres check against PostgreSQL: %v\n%s", err, pg.Log())
	}
	wantErr(t, check(t, c, closedAddr(t), 5*time.Second), syscall.ECONNREFUSED, refused)

	// MariaDB speaks first: its greeting is no answer to an SSLRequest.
	my := mariadbServer.Get(t)
	wantErr(t, check(t, c, my.Addr, 10*time.Second), ErrUnexpectedReply, "postgres check of "+my.Addr, "not a PostgreSQL answer")

	// Redis waits for a line end that never comes.
	rd := redisServer.Get(t)
	wantErr(t, check(t, c, rd.Addr, 500*time.Millisecond), context.DeadlineExceeded, "reply to SSLRequest")
}

func TestMySQLCheck(t *testing.T) {
	my := mariadbServer.Get(t)
	c := mustChecker(t, CheckSettings{Type: "mysql"})
	for range 3 { // repeated checks must not get the host blocked
		if err := check(t, c, my.Addr, 10*time.Second); err != nil {
			t.Fatalf("mysql check against MariaDB: %v\n%s", err, my.Log())
		}
	}
	wantErr(t, check(t, c, closedAddr(t), 5*time.Second), syscall.ECONNREFUSED, refused)

	// An HTTP server waits for a request: no greeting before the timeout.
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	wantErr(t, check(t, c, hs.Listener.Addr().String(), 500*time.Millisecond), context.DeadlineExceeded, "MySQL greeting")

	// PostgreSQL waits for a startup packet.
	pg := postgresServer.Get(t)
	wantErr(t, check(t, c, pg.Addr, 500*time.Millisecond), context.DeadlineExceeded, "MySQL greeting")
}

// TestMySQLCheckErrPacket: a server that refuses at once (too many
// connections) sends an ERR packet instead of a greeting; the check fails
// with its message. The bytes are what MariaDB sends.
func TestMySQLCheckErrPacket(t *testing.T) {
	addr := serve(t, func(c net.Conn) { c.Write(mysqlTooManyConnections) })
	err := check(t, mustChecker(t, CheckSettings{Type: "mysql"}), addr, 5*time.Second)
	wantErr(t, err, ErrServerRefused, "1040", "Too many connections")
}

func TestRedisCheck(t *testing.T) {
	rd := redisServer.Get(t)
	c := mustChecker(t, CheckSettings{Type: "redis"})
	if err := check(t, c, rd.Addr, 10*time.Second); err != nil {
		t.Fatalf("redis check against Redis: %v\n%s", err, rd.Log())
	}
	// With requirepass, PING gets -NOAUTH: alive, so healthy.
	auth := redisAuthServer.Get(t)
	if err := check(t, c, auth.Addr, 10*time.Second); err != nil {
		t.Fatalf("redis check against Redis with requirepass: %v\n%s", err, auth.Log())
	}
	wantErr(t, check(t, c, closedAddr(t), 5*time.Second), syscall.ECONNREFUSED, refused)

	// MariaDB's greeting is not a Redis reply.
	my := mariadbServer.Get(t)
	wantErr(t, check(t, c, my.Addr, 10*time.Second), ErrUnexpectedReply, "redis check of "+my.Addr, "not a Redis")

	// An HTTP server answers PING with a 400 response.
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	wantErr(t, check(t, c, hs.Listener.Addr().String(), 10*time.Second), ErrUnexpectedReply, "HTTP/1.1 400")

	// A loading Redis refuses with its message.
	addr := serve(t, reply("-LOADING Redis is loading the dataset in memory\r\n"))
	wantErr(t, check(t, c, addr, 5*time.Second), ErrServerRefused, "LOADING Redis is loading")
}

// TestTCPCheckAgainstRedis: the generic tcp check with send/expect does what
// the redis check does.
func TestTCPCheckAgainstRedis(t *testing.T) {
	rd := redisServer.Get(t)
	c := mustChecker(t, CheckSettings{Type: "tcp", Send: []byte("PING\r\n"), Expect: "+PONG"})
	if err := check(t, c, rd.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
