package health

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Replies as the servers send them: the greeting and the error response were
// captured from the Debian packages' MariaDB 10.11 and PostgreSQL 15 (the
// latter answering a startup packet with protocol 9.9); the ERR packets are
// built as MariaDB builds them before authentication (code, then message,
// no SQLSTATE), with MariaDB's message texts.
var (
	mariadbGreeting = []byte("d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x04\x00\x00\x00.{F*;-kV\x00\xfe\xf7\b\x02" +
		"\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00KWSx%J&~k}Sf\x00mysql_native_password\x00")
	mysqlTooManyConnections = []byte("\x17\x00\x00\x00\xff\x10\x04Too many connections")
	mysqlHostBlocked        = []byte("\x69\x00\x00\x00\xff\x69\x04Host '10.0.0.5' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts'")
	pgErrorResponse         = []byte("E\x00\x00\x00\x83SFATAL\x00VFATAL\x00C0A000\x00Munsupported frontend protocol 9.9: server supports 3.0 to 3.0" +
		"\x00Fpostmaster.c\x00L2222\x00RProcessStartupPacket\x00\x00")
)

func TestParseMySQLGreeting(t *testing.T) {
	v, err := parseMySQLGreeting(mariadbGreeting)
	if err != nil || v != "5.5.5-10.11.19-MariaDB-0+deb12u1" {
		t.Fatalf("greeting: version %q err %v", v, err)
	}
	for i := range len(mariadbGreeting) {
		if _, err := parseMySQLGreeting(mariadbGreeting[:i]); !errors.Is(err, errIncomplete) {
			t.Fatalf("greeting cut at %d: %v, want errIncomplete", i, err)
		}
	}
	tests := []struct {
		in    string
		want  error
		words string
	}{
		{string(mysqlTooManyConnections), ErrServerRefused, "server error 1040: Too many connections"},
		{string(mysqlHostBlocked), ErrServerRefused, "server error 1129: Host '10.0.0.5' is blocked"},
		{"\x0d\x00\x00\x00\xff\x15\x04#28000Nope", ErrServerRefused, "server error 1045: Nope"},
		{"\x05\x00\x00\x00\x0910.0\x00"[:9], ErrUnexpectedReply, "protocol version 9"},
		{"\x03\x00\x00\x00\x0a\x00\x00", ErrUnexpectedReply, "no server version"},
		{"\x03\x00\x00\x00\x0aab", ErrUnexpectedReply, "no server version"},
		{"\x02\x00\x00\x01\x0a\x00", ErrUnexpectedReply, "not a MySQL greeting"},
		{"HTTP/1.1 400 Bad Request\r\n", ErrUnexpectedReply, "not a MySQL greeting"},
		{"\x00\x00\x00\x00", ErrUnexpectedReply, "not a MySQL greeting"},
		{"\x02\x00\x00\x00\xff\x01", ErrUnexpectedReply, "too short"},
		{"\x03\x00\x00\x00\x0aa\x00extra", ErrUnexpectedReply, "followed by more"},
	}
	for _, tt := range tests {
		_, err := parseMySQLGreeting([]byte(tt.in))
		wantParseErr(t, "parseMySQLGreeting", tt.in, err, tt.want, tt.words)
	}
}

func TestParsePostgresSSLReply(t *testing.T) {
	for _, ok := range []string{"S", "N"} {
		if err := parsePostgresSSLReply([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for i := range len(pgErrorResponse) {
		if err := parsePostgresSSLReply(pgErrorResponse[:i]); !errors.Is(err, errIncomplete) {
			t.Fatalf("error response cut at %d: %v, want errIncomplete", i, err)
		}
	}
	tests := []struct {
		in    string
		want  error
		words string
	}{
		{string(pgErrorResponse), ErrServerRefused, "server error FATAL 0A000: unsupported frontend protocol 9.9"},
		{"E\x00\x00\x00\x06S\x00", ErrServerRefused, "without a message"},
		{"E\x00\x00\x00\x06Sx", ErrUnexpectedReply, "unterminated"},
		{"E\x00\x00\x00\x02", ErrUnexpectedReply, "not a PostgreSQL message"},
		{"E\x7f\x00\x00\x00", ErrUnexpectedReply, "not a PostgreSQL message"},
		{"NX", ErrUnexpectedReply, "longer than one byte"},
		{"+PONG\r\n", ErrUnexpectedReply, "not a PostgreSQL answer"},
		{"\x6d\x00\x00\x00\x0a5.5", ErrUnexpectedReply, "not a PostgreSQL answer"},
	}
	for _, tt := range tests {
		wantParseErr(t, "parsePostgresSSLReply", tt.in, parsePostgresSSLReply([]byte(tt.in)), tt.want, tt.words)
	}
}

func TestParseRedisPong(t *testing.T) {
	for _, ok := range []string{"+PONG\r\n", "-NOAUTH Authentication required.\r\n"} {
		if err := parseRedisPong([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, inc := range []string{"", "+", "+PON", "+PONG\r", "-LOADING Redis is"} {
		if err := parseRedisPong([]byte(inc)); !errors.Is(err, errIncomplete) {
			t.Errorf("%q: %v, want errIncomplete", inc, err)
		}
	}
	tests := []struct {
		in    string
		want  error
		words string
	}{
		{"-LOADING Redis is loading the dataset in memory\r\n", ErrServerRefused, "LOADING Redis is loading"},
		{"-DENIED Redis is running in protected mode\r\n", ErrServerRefused, "DENIED"},
		{"-MASTERDOWN Link with MASTER is down\r\n", ErrServerRefused, "MASTERDOWN"},
		{"+OK\r\n", ErrUnexpectedReply, `"+OK" to PING`},
		{"+PONGS\r\n", ErrUnexpectedReply, "want +PONG"},
		{"$4\r\nPONG\r\n", ErrUnexpectedReply, "not a Redis status"},
		{"HTTP/1.1 400 Bad Request\r\n", ErrUnexpectedReply, "not a Redis status"},
		{"+" + string(make([]byte, maxRedisLine)), ErrUnexpectedReply, "no line end"},
	}
	for _, tt := range tests {
		wantParseErr(t, "parseRedisPong", tt.in, parseRedisPong([]byte(tt.in)), tt.want, tt.words)
	}
}

func wantParseErr(t *testing.T, fn, in string, err, want error, words string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s(%q) = %v, want %v", fn, in, err, want)
		return
	}
	if !strings.Contains(err.Error(), words) {
		t.Errorf("%s(%q) = %q, want it to mention %q", fn, in, err, words)
	}
}

func FuzzMySQLGreeting(f *testing.F) {
	for _, seed := range [][]byte{mariadbGreeting, mysqlTooManyConnections, mysqlHostBlocked, []byte("HTTP/1.1 400 Bad Request\r\n"), {}, {0xff, 0xff, 0xff, 0}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseMySQLGreeting(b)
		if err == nil && (v == "" || len(b) < 6) {
			t.Fatalf("accepted %q with version %q", b, v)
		}
	})
}

func FuzzRedisReply(f *testing.F) {
	for _, seed := range []string{"+PONG\r\n", "-NOAUTH Authentication required.\r\n", "-LOADING Redis is loading the dataset in memory\r\n", "$4\r\nPONG\r\n", ""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := parseRedisPong(b); err == nil && b[0] != '+' && b[0] != '-' {
			t.Fatalf("accepted %q", b)
		}
	})
}

func FuzzPostgresReply(f *testing.F) {
	for _, seed := range [][]byte{[]byte("S"), []byte("N"), pgErrorResponse, []byte("E\x00\x00\x00\x05"), mariadbGreeting} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := parsePostgresSSLReply(b); err == nil && len(b) != 1 {
			t.Fatalf("accepted %q", b)
		}
	})
}

// FuzzHTTPResponse feeds raw bytes to the HTTP check's response judge: it must
// never panic, and a response it accepts must have an expected status.
func FuzzHTTPResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nrole\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\n{\"role\": \"master\"}",
		"SSH-2.0-OpenSSH_9.2\r\n",
		"+PONG\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	c, err := newHTTPChecker(dialer{}, CheckSettings{Type: TypeHTTP, ExpectBody: "role"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := c.judge(bytes.NewReader(data))
		if err == nil && !bytes.HasPrefix(data, []byte("HTTP/")) {
			t.Fatalf("accepted a reply that is not HTTP: %q", data)
		}
	})
}
