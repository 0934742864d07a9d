package l4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/internal/testcert"
)

// tlsBackend is a TLS server with its own certificate: after the handshake
// it says its name, reads one line and answers "name:line", then closes.
func tlsBackend(t *testing.T, ca *testcert.CA, name string, hosts ...string) *backendServer {
	t.Helper()
	cert := ca.Issue(t, name, hosts...).TLS(t)
	return startBackend(t, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}})
		if err := tc.Handshake(); err != nil {
			return
		}
		serveLine(tc, name)
		_ = tc.Close() // close_notify: openssl calls an EOF without it an error
	})
}

// serveLine says name, then answers one line with "name:line".
func serveLine(rw io.ReadWriter, name string) {
	if _, err := io.WriteString(rw, name+"\n"); err != nil {
		return
	}
	line, err := bufio.NewReader(rw).ReadString('\n')
	if err != nil {
		return
	}
	_, _ = io.WriteString(rw, name+":"+line)
}

// plainOrTLSBackend is a default route's backend: it speaks TLS to a client
// that starts with a handshake record and plain text to one that does not.
func plainOrTLSBackend(t *testing.T, ca *testcert.CA, name string) *backendServer {
	t.Helper()
	cert := ca.Issue(t, name, "default.example.com").TLS(t)
	return startBackend(t, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(c)
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		conn := &peekedConn{TCPConn: c, r: br}
		if first[0] != 0x16 {
			serveLine(conn, name+"-plain")
			return
		}
		tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}})
		if err := tc.Handshake(); err != nil {
			return
		}
		serveLine(tc, name)
	})
}

type peekedConn struct {
	*net.TCPConn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// sniService is a TLS-routed service on listen with one backend.
func sniService(name, listen string, backend *backendServer, names ...string) config.Service {
	sc := testService(name, be(name, backend.addr))
	sc.Listen = listen
	sc.SNI = names
	return sc
}

// tlsCall connects to addr, optionally through wrap (which sees the raw
// TCP connection first), does a TLS handshake asking for serverName ("" =
// no SNI) and one line's round trip. It returns the backend's name, the
// certificate's common name and the reply, or the error.
func tlsCall(addr, serverName string, pool *tlsPool, wrap func(net.Conn) net.Conn) (name, cn string, err error) {
	d := net.Dialer{Timeout: testTimeout}
	if pool.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(pool.local)}
	}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return "", "", err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(testTimeout))
	conn := raw
	if wrap != nil {
		conn = wrap(raw)
	}
	cfg := &tls.Config{ServerName: serverName, RootCAs: pool.ca.Pool(), CurvePreferences: pool.curves}
	if serverName == "" {
		// No name to verify against: check the chain, and report the leaf.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool.ca.Pool()})
			return err
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return "", "", fmt.Errorf("handshake: %w", err)
	}
	cn = tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	br := bufio.NewReader(tc)
	first, err := br.ReadString('\n')
	if err != nil {
		return "", cn, fmt.Errorf("reading the backend's name: %w", err)
	}
	name = strings.TrimSuffix(first, "\n")
	if _, err := io.WriteString(tc, "ping\n"); err != nil {
		return name, cn, err
	}
	reply, err := br.ReadString('\n')
	if err != nil || reply != name+":ping\n" {
		return name, cn, fmt.Errorf("reply %q, %v", reply, err)
	}
	return name, cn, nil
}

// tlsPool is what a test's TLS clients trust and how they connect.
type tlsPool struct {
	ca     *testcert.CA
	curves []tls.CurveID // nil: crypto/tls's defaults
	local  string        // the address to connect from; "": any
}

// byteByByte writes everything one byte per write(2), with a pause, until
// the handshake is done: the ClientHello arrives in as many reads as the
// proxy makes.
type byteByByte struct {
	net.Conn
	writes int
}

func (c *byteByByte) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
		c.writes++
		time.Sleep(50 * time.Microsecond)
	}
	return len(b), nil
}

// reRecord splits the first write (the ClientHello record) into handshake
// records of size bytes each, written one by one: the ClientHello spans
// many records and reads.
type reRecord struct {
	net.Conn
	size int
	done bool
}

func (c *reRecord) Write(b []byte) (int, error) {
	if c.done || len(b) < 5 || b[0] != 0x16 {
		return c.Conn.Write(b)
	}
	c.done = true
	n := int(b[3])<<8 | int(b[4])
	msg, rest := b[5:5+n], b[5+n:]
	for len(msg) > 0 {
		k := min(c.size, len(msg))
		rec := append([]byte{0x16, b[1], b[2], byte(k >> 8), byte(k)}, msg[:k]...)
		if _, err := c.Conn.Write(rec); err != nil {
			return 0, err
		}
		msg = msg[k:]
		time.Sleep(100 * time.Microsecond)
	}
	if len(rest) > 0 {
		if _, err := c.Conn.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// TestSNIRouting: services sharing one address, each with its own TLS
// backend and certificate; real crypto/tls clients pick them by name: the
// exact name, the longest matching wildcard, the default route for an
// unknown name, no name, plain TCP and a client that sends nothing; a ClientHello written byte by byte
// and one spread over many records route alike.
func TestSNIRouting(t *testing.T) {
	ca := testcert.NewCA(t, "sni test CA")
	pool := &tlsPool{ca: ca}
	listen := closedPort(t)
	db := tlsBackend(t, ca, "db", "db.example.com")
	apps := tlsBackend(t, ca, "apps", "*.apps.example.com", "*.b.apps.example.com")
	deep := tlsBackend(t, ca, "deep", "*.x.apps.example.com")
	wild := tlsBackend(t, ca, "wild", "*.example.com")
	dflt := plainOrTLSBackend(t, ca, "dflt")
	rt, logs := startRuntime(t, testConfig(
		sniService("db", listen, db, "db.example.com"),
		sniService("apps", listen, apps, "*.apps.example.com"),
		sniService("deep", listen, deep, "*.x.apps.example.com"),
		sniService("wild", listen, wild, "*.example.com"),
		sniService("dflt", listen, dflt),
	))
	for _, svc := range []string{"db", "apps", "deep", "wild", "dflt"} {
		if got := rt.Addr(svc).String(); got != listen {
			t.Fatalf("service %s listens on %s, want the shared %s", svc, got, listen)
		}
	}

	tests := []struct {
		serverName, want string
	}{
		{"db.example.com", "db"},
		{"DB.Example.COM", "db"}, // names compare case-insensitively
		{"x.apps.example.com", "apps"},
		{"a.b.apps.example.com", "apps"},
		{"a.x.apps.example.com", "deep"}, // the longest wildcard wins
		{"www.example.com", "wild"},
		{"apps.example.com", "wild"}, // *.apps.example.com does not match apps.example.com
		{"unknown.test", "dflt"},     // no route: the default
		{"", "dflt"},                 // no SNI: the default
	}
	for _, tc := range tests {
		name, _, err := tlsCall(listen, tc.serverName, pool, nil)
		if tc.want == "dflt" && tc.serverName != "" {
			// The default backend's certificate does not name it: the
			// client rightly refuses; the route is seen in the certificate.
			var cerr *tls.CertificateVerificationError
			if !errors.As(err, &cerr) || cerr.UnverifiedCertificates[0].Subject.CommonName != "dflt" {
				t.Errorf("SNI %q: %v, want the default route's certificate (dflt)", tc.serverName, err)
			}
			continue
		}
		if err != nil || name != tc.want {
			t.Errorf("SNI %q: went to %q (%v), want %q", tc.serverName, name, err, tc.want)
		}
	}

	// Plain TCP goes to the default route, its first bytes intact.
	c := dialService(t, rt, "dflt")
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if got, err := br.ReadString('\n'); err != nil || got != "dflt-plain\n" {
		t.Fatalf("plain TCP: %q, %v", got, err)
	}
	if got, err := br.ReadString('\n'); err != nil || got != "dflt-plain:hello\n" {
		t.Fatalf("plain TCP reply: %q, %v; the bytes read to route it must reach the backend first", got, err)
	}
	_ = c.Close()

	// A client that closes its side without a byte (a connect-and-close
	// check) sent no TLS: the default route too.
	c = dialService(t, rt, "dflt")
	_ = c.CloseWrite()
	if err := readClosed(c); err != nil {
		t.Fatalf("connect and close: %v", err)
	}

	// A ClientHello written one byte at a time (X25519 alone keeps it short).
	short := &tlsPool{ca: ca, curves: []tls.CurveID{tls.X25519}}
	var slow *byteByByte
	name, _, err := tlsCall(listen, "db.example.com", short, func(c net.Conn) net.Conn {
		slow = &byteByByte{Conn: c}
		return slow
	})
	if err != nil || name != "db" {
		t.Fatalf("byte by byte: %q, %v", name, err)
	}
	if slow.writes < 100 {
		t.Fatalf("only %d one-byte writes", slow.writes)
	}

	// A ClientHello spread over records of 7 bytes, and of 300.
	for _, size := range []int{7, 300} {
		name, _, err := tlsCall(listen, "a.x.apps.example.com", pool, func(c net.Conn) net.Conn {
			return &reRecord{Conn: c, size: size}
		})
		if err != nil || name != "deep" {
			t.Fatalf("records of %d bytes: %q, %v", size, name, err)
		}
	}

	// Per-route metrics and rows: each service counted its own.
	waitFor(t, "connections to end", func() bool {
		for _, s := range rt.Services() {
			if s.ActiveConnections != 0 {
				return false
			}
		}
		return true
	})
	for svc, want := range map[string]int64{"db": 3, "apps": 2, "deep": 3, "wild": 2, "dflt": 4} {
		v := serviceView(t, rt, svc)
		if v.TotalConnections != want || v.Backends[0].TotalConnections != want {
			t.Errorf("%s: %d connections, backend %d; want %d", svc, v.TotalConnections, v.Backends[0].TotalConnections, want)
		}
		if v.RejectedConnections != 0 {
			t.Errorf("%s: %d rejected", svc, v.RejectedConnections)
		}
	}
	// The bytes read to route count as the client's.
	if v := backendView(t, rt, "db", "db"); v.BytesIn < 200 {
		t.Errorf("db's bytes_in = %d, want the ClientHellos counted", v.BytesIn)
	}
	if strings.Contains(logs.String(), "rejected") {
		t.Fatalf("a rejection in the log:\n%s", logs)
	}
}

// readClosed reads from c until it ends and reports how: nil for a clean
// EOF or a reset (both mean the proxy closed it), else the error.
func readClosed(c net.Conn) error {
	_, err := io.Copy(io.Discard, c)
	if err == nil || isReset(err) {
		return nil
	}
	return err
}

// TestSNIRejections: without a default route, a name that matches nothing,
// no name, plain TCP and a client that sends nothing are closed and counted no_route under the first
// service; so is a ClientHello larger than 16 KiB, and one that never
// completes, at the shortest connect timeout of the address.
func TestSNIRejections(t *testing.T) {
	ca := testcert.NewCA(t, "sni test CA")
	pool := &tlsPool{ca: ca}
	listen := closedPort(t)
	db := tlsBackend(t, ca, "db", "db.example.com")
	web := tlsBackend(t, ca, "web", "web.example.com")
	first := sniService("db", listen, db, "db.example.com")
	second := sniService("web", listen, web, "web.example.com")
	second.Timeouts.Connect = 300 * time.Millisecond // the shortest: it bounds the ClientHello
	rt, logs := startRuntime(t, testConfig(first, second))

	if name, _, err := tlsCall(listen, "web.example.com", pool, nil); err != nil || name != "web" {
		t.Fatalf("web: %q, %v", name, err)
	}
	for _, serverName := range []string{"other.example.com", ""} {
		if _, _, err := tlsCall(listen, serverName, pool, nil); err == nil {
			t.Fatalf("SNI %q was served without a route", serverName)
		}
	}
	c := dialService(t, rt, "db")
	if _, err := io.WriteString(c, "plain\n"); err != nil {
		t.Fatal(err)
	}
	if err := readClosed(c); err != nil {
		t.Fatalf("plain TCP without a default route: %v", err)
	}
	c = dialService(t, rt, "db")
	_ = c.CloseWrite()
	if err := readClosed(c); err != nil {
		t.Fatalf("connect and close without a default route: %v", err)
	}

	// Larger than 16 KiB: a handshake header that says so is closed at once;
	// one in records of a byte each is closed once 16 KiB came.
	c = dialService(t, rt, "db")
	if _, err := c.Write([]byte{0x16, 3, 1, 0x40, 0, 1, 0, 0x4e, 0x20}); err != nil {
		t.Fatal(err)
	}
	if err := readClosed(c); err != nil {
		t.Fatalf("a 20 000-byte ClientHello: %v", err)
	}
	c = dialService(t, rt, "db")
	var big []byte
	big = append(big, 0x16, 3, 1, 0, 4, 1, 0, 0x3f, 0) // 16 128 bytes announced, in records of
	for len(big) < 20<<10 {                            // one byte each: 6 bytes per byte
		big = append(big, 0x16, 3, 1, 0, 1, 0)
	}
	go func() { _, _ = c.Write(big) }() // the proxy stops reading at 16 KiB
	if err := readClosed(c); err != nil {
		t.Fatalf("a ClientHello over 16 KiB of records: %v", err)
	}

	// Never completes: closed at 300ms, the address's shortest connect timeout.
	c = dialService(t, rt, "db")
	if _, err := c.Write([]byte{0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := readClosed(c); err != nil {
		t.Fatalf("an incomplete ClientHello: %v", err)
	}
	if took := time.Since(began); took < 250*time.Millisecond || took > 5*time.Second {
		t.Fatalf("an incomplete ClientHello was closed after %v, want about 300ms", took)
	}

	waitFor(t, "the rejections counted", func() bool {
		return serviceView(t, rt, "db").Rejected.NoRoute == 7
	})
	if v := serviceView(t, rt, "web"); v.Rejected.NoRoute != 0 || v.TotalConnections != 1 {
		t.Fatalf("web counted %d no_route, %d connections; want 0 and 1", v.Rejected.NoRoute, v.TotalConnections)
	}
	if v := serviceView(t, rt, "db"); v.TotalConnections != 7 || v.RejectedConnections != 7 || v.Backends[0].TotalConnections != 0 {
		t.Fatalf("db: total %d, rejected %d, backend %d; want 7, 7, 0", v.TotalConnections, v.RejectedConnections, v.Backends[0].TotalConnections)
	}
	waitFor(t, "seven access log lines", func() bool { return strings.Count(logs.String(), `"end":"rejected: no_route"`) == 7 })
	for _, want := range []string{`other.example.com`, "sent no server name", "closed its side after 0 bytes", "larger than 16 KiB", "no complete ClientHello within 300ms"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the access log does not say %q:\n%s", want, logs)
		}
	}
}

// TestSNIReload: routes on a shared address are added, changed and removed
// by a reload that keeps the listener and an established connection.
func TestSNIReload(t *testing.T) {
	ca := testcert.NewCA(t, "sni test CA")
	pool := &tlsPool{ca: ca}
	listen := closedPort(t)
	db := tlsBackend(t, ca, "db", "db.example.com", "db2.example.com")
	web := tlsBackend(t, ca, "web", "web.example.com")
	api := tlsBackend(t, ca, "api", "api.example.com")
	rt, _ := startRuntime(t, testConfig(
		sniService("db", listen, db, "db.example.com"),
		sniService("web", listen, web, "web.example.com"),
	))

	// An established connection through web, mid-conversation.
	raw, err := net.DialTimeout("tcp", listen, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(testTimeout))
	est := tls.Client(raw, &tls.Config{ServerName: "web.example.com", RootCAs: ca.Pool()})
	br := bufio.NewReader(est)
	if got, err := br.ReadString('\n'); err != nil || got != "web\n" {
		t.Fatalf("web: %q, %v", got, err)
	}

	// Reload: web goes, api comes, db takes a second name.
	cfgDB := sniService("db", listen, db, "db.example.com", "db2.example.com")
	rl, err := rt.Apply(testConfig(cfgDB, sniService("api", listen, api, "api.example.com")))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rl.ServicesAdded, rl.ServicesRemoved, rl.ServicesChanged) != "[api] [web] [db]" {
		t.Fatalf("reload: %+v", rl)
	}
	for serverName, want := range map[string]string{"db.example.com": "db", "db2.example.com": "db", "api.example.com": "api"} {
		if name, _, err := tlsCall(listen, serverName, pool, nil); err != nil || name != want {
			t.Fatalf("after the reload, %s: %q, %v; want %s", serverName, name, err, want)
		}
	}
	if _, _, err := tlsCall(listen, "web.example.com", pool, nil); err == nil {
		t.Fatal("web.example.com still routed after its service was removed")
	}
	if _, err := io.WriteString(est, "still here\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := br.ReadString('\n'); err != nil || got != "web:still here\n" {
		t.Fatalf("the established connection after the reload: %q, %v", got, err)
	}

	// The last route goes plain: one service, no sni, same listener.
	plain := testService("db", be("db", db.addr))
	plain.Listen = listen
	if _, err := rt.Apply(testConfig(plain)); err != nil {
		t.Fatal(err)
	}
	if name, _, err := tlsCall(listen, "db.example.com", pool, nil); err != nil || name != "db" {
		t.Fatalf("plain service: %q, %v", name, err)
	}
}

// TestSNIWithOpenSSL: openssl s_client, an independent TLS client, through
// the proxy to a backend, verifying the backend's certificate for the name.
func TestSNIWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	ca := testcert.NewCA(t, "sni test CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := closedPort(t)
	db := tlsBackend(t, ca, "db", "db.example.com")
	apps := tlsBackend(t, ca, "apps", "*.apps.example.com")
	startRuntime(t, testConfig(
		sniService("db", listen, db, "db.example.com"),
		sniService("apps", listen, apps, "*.apps.example.com"),
	))
	for serverName, want := range map[string]string{"db.example.com": "db", "shop.apps.example.com": "apps"} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", listen, "-servername", serverName,
			"-CAfile", caFile, "-verify_hostname", serverName, "-verify_return_error", "-ign_eof")
		cmd.Stdin = strings.NewReader("from openssl\n")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("openssl s_client -servername %s: %v\n%s\n%s", serverName, err, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), want+":from openssl") || !strings.Contains(out.String(), "Verify return code: 0 (ok)") {
			t.Fatalf("openssl s_client -servername %s did not reach %s verified:\n%s\n%s", serverName, want, out.String(), errb.String())
		}
	}
}
