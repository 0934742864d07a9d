package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/status"
)

func TestNewRejectsBadOptions(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no controller", Options{Listen: "127.0.0.1:0"}, "no Controller"},
		{"no port", Options{Listen: "127.0.0.1", Controller: f.ctrl}, `listen address "127.0.0.1"`},
		{"empty listen", Options{Listen: "", Controller: f.ctrl}, `listen address ""`},
		{"negative period", Options{Listen: "127.0.0.1:0", Controller: f.ctrl, SampleEvery: -time.Second}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestStartServeShutdown(t *testing.T) {
	f := newFixture(t, "")
	if f.srv.Addr() != nil {
		t.Fatal("Addr before Start is not nil")
	}
	base := startServer(t, f)
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("GET /healthz = %d %q", resp.StatusCode, body)
	}
	if err := f.srv.Start(); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second Start = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	f := newFixture(t, "")
	if err := f.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := f.srv.Start(); err == nil || !strings.Contains(err.Error(), "shut down") {
		t.Fatalf("Start after Shutdown = %v", err)
	}
}

func TestStartNamesAddressAndOSError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := newFixture(t, "")
	srv, err := New(Options{Listen: ln.Addr().String(), Controller: f.ctrl})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start()
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("Start on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Start = %v, want the address and EADDRINUSE", err)
	}
}

// A client that sends half a request header is disconnected at
// ReadHeaderTimeout instead of holding a connection forever.
func TestSlowClientIsCut(t *testing.T) {
	f := newFixture(t, "")
	f.srv.http.ReadHeaderTimeout = 200 * time.Millisecond
	startServer(t, f)
	conn, err := net.Dial("tcp", f.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a slow client's connection open")
	}
}

// blockingController's Reload waits until released, like a reload stuck on a
// slow file system.
type blockingController struct {
	Controller
	release chan struct{}
}

func (b blockingController) Reload(string) (status.Reload, error) {
	<-b.release
	return status.Reload{}, nil
}

func TestRequestTimeout(t *testing.T) {
	f := newFixture(t, "")
	release := make(chan struct{})
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: blockingController{f.ctrl, release},
		RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	rec := f.request("POST", "/api/v1/reload", "")
	close(release)
	msg := wantError(t, rec, http.StatusServiceUnavailable)
	if msg != "request timed out" {
		t.Fatalf("error = %q", msg)
	}
}

func TestSamplerStopsOnShutdown(t *testing.T) {
	f := newFixture(t, "")
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: f.ctrl, SampleEvery: time.Millisecond, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var p points
	srv.history.backend("web", "a", &p)
	if len(p.active) == 0 {
		t.Fatal("Start took no first sample")
	}
	// Shutdown waits for the sampler; goleak in TestMain checks that its
	// goroutine is gone.
}
