package health

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// healthServer is a loopback HTTP server whose /health answers with status
// and body, and which remembers the last request's Host and Connection.
type healthServer struct {
	*httptest.Server
	mu         sync.Mutex
	host, conn string
	paths      []string
}

func newHealthServer(t *testing.T, tlsCert *tls.Certificate, status int, body string) *healthServer {
	t.Helper()
	hs := &healthServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		hs.host, hs.conn = r.Host, r.Header.Get("Connection")
		hs.paths = append(hs.paths, r.URL.Path)
		hs.mu.Unlock()
		switch r.URL.Path {
		case "/health", "/ready":
			w.WriteHeader(status)
			w.Write([]byte(body))
		case "/moved":
			http.Redirect(w, r, "/health", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	hs.Server = httptest.NewUnstartedServer(mux)
	if tlsCert != nil {
		hs.TLS = &tls.Config{Certificates: []tls.Certificate{*tlsCert}}
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	return hs
}

func (hs *healthServer) addr() string { return hs.Listener.Addr().String() }

func (hs *healthServer) lastRequest() (host, conn string, paths []string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.host, hs.conn, append([]string(nil), hs.paths...)
}

func TestHTTPCheck(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		settings CheckSettings
		wantErr  error // nil: healthy
		words    []string
	}{
		{"200 is in the default list", 200, "ok", CheckSettings{}, nil, nil},
		{"204 is in the default list", 204, "", CheckSettings{}, nil, nil},
		{"503 is not", 503, "down", CheckSettings{}, ErrServerRefused, []string{"status 503", "[200 204]", "GET /health"}},
		{"a listed status passes", 429, "", CheckSettings{ExpectedStatus: []int{200, 429}}, nil, nil},
		{"200 outside an explicit list fails", 200, "", CheckSettings{ExpectedStatus: []int{204}}, ErrServerRefused, []string{"status 200"}},
		{"body match", 200, `{"role": "master", "ok": true}`, CheckSettings{ExpectBody: `"role": "master"`}, nil, nil},
		{"body mismatch", 200, `{"role": "replica"}`, CheckSettings{ExpectBody: `"role": "master"`}, ErrUnexpectedReply, []string{`does not contain`, `replica`}},
		{"custom path", 200, "", CheckSettings{Path: "/ready"}, nil, nil},
		{"unknown path is 404", 200, "", CheckSettings{Path: "/nope"}, ErrServerRefused, []string{"status 404", "GET /nope"}},
		{"redirects are not followed", 200, "", CheckSettings{Path: "/moved"}, ErrServerRefused, []string{"status 302"}},
		{"a redirect may be expected", 200, "", CheckSettings{Path: "/moved", ExpectedStatus: []int{302}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHealthServer(t, nil, tt.status, tt.body)
			s := tt.settings
			s.Type = "http"
			err := check(t, mustChecker(t, s), hs.addr(), 5*time.Second)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("check failed: %v", err)
				}
				return
			}
			wantErr(t, err, tt.wantErr, tt.words...)
		})
	}
}

func TestHTTPCheckRequestShape(t *testing.T) {
	hs := newHealthServer(t, nil, 200, "ok")
	if err := check(t, mustChecker(t, CheckSettings{Type: "http"}), hs.addr(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	host, conn, paths := hs.lastRequest()
	if host != hs.addr() || conn != "close" || len(paths) != 1 || paths[0] != "/health" {
		t.Fatalf("request: Host %q Connection %q paths %q; want %q, close, [/health]", host, conn, paths, hs.addr())
	}
}

func TestHTTPCheckPortOverrideKeepsBackendHost(t *testing.T) {
	hs := newHealthServer(t, nil, 200, "ok")
	port := atoi(t, hs.addr()[strings.LastIndexByte(hs.addr(), ':')+1:])
	backend := closedAddr(t)
	if err := check(t, mustChecker(t, CheckSettings{Type: "http", Port: port}), backend, 5*time.Second); err != nil {
		t.Fatalf("check with port override: %v", err)
	}
	if host, _, _ := hs.lastRequest(); host != backend {
		t.Fatalf("Host %q, want the backend's address %q", host, backend)
	}
}

func TestHTTPCheckRefused(t *testing.T) {
	err := check(t, mustChecker(t, CheckSettings{Type: "http"}), closedAddr(t), 5*time.Second)
	wantErr(t, err, nil, refused)
}

func TestHTTPCheckNotHTTP(t *testing.T) {
	addr := serve(t, reply("+PONG\r\n"))
	err := check(t, mustChecker(t, CheckSettings{Type: "http"}), addr, 5*time.Second)
	wantErr(t, err, nil, "reading HTTP response", "malformed HTTP")
}

func TestHTTPSCheck(t *testing.T) {
	cert := selfSignedCert(t)
	hs := newHealthServer(t, &cert, 200, "ok")

	err := check(t, mustChecker(t, CheckSettings{Type: "https", TLSSkipVerify: true}), hs.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("https with tls_skip_verify: %v", err)
	}
	if host, _, _ := hs.lastRequest(); host != hs.addr() {
		t.Fatalf("Host %q over TLS, want %q", host, hs.addr())
	}

	err = check(t, mustChecker(t, CheckSettings{Type: "https"}), hs.addr(), 5*time.Second)
	wantErr(t, err, nil, "TLS handshake", "certificate")

	// Plain HTTP against the TLS port fails too (with a 400 from Go's server).
	err = check(t, mustChecker(t, CheckSettings{Type: "http"}), hs.addr(), 5*time.Second)
	wantErr(t, err, ErrServerRefused, "status 400")
}

func TestCheckHTTPResponse(t *testing.T) {
	tests := []struct {
		status     int
		body       string
		expected   []int
		expectBody string
		want       error
	}{
		{200, "", nil, "", nil},
		{204, "", nil, "", nil},
		{201, "", nil, "", ErrServerRefused},
		{201, "", []int{201}, "", nil},
		{200, "hello world", nil, "world", nil},
		{200, "hello", nil, "world", ErrUnexpectedReply},
		{500, "world", nil, "world", ErrServerRefused},
	}
	for _, tt := range tests {
		err := checkHTTPResponse(tt.status, []byte(tt.body), tt.expected, tt.expectBody)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("checkHTTPResponse(%d, %q, %v, %q) = %v, want %v", tt.status, tt.body, tt.expected, tt.expectBody, err, tt.want)
		}
	}
}

// selfSignedCert makes a certificate for 127.0.0.1 that no one trusts.
func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "balance-l4 test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
