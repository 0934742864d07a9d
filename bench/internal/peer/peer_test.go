package peer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/bench/internal/benchtest"
	"github.com/balancel4/balance-l4/bench/internal/child"
	"github.com/balancel4/balance-l4/bench/internal/procstat"
	"github.com/balancel4/balance-l4/config"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	child.ExitIfChild()
	goleak.VerifyTestMain(m)
}

var (
	testEcho = []string{"127.0.0.1:7001", "127.0.0.1:7002"}
	testSink = []string{"127.0.0.1:7003", "127.0.0.1:7004"}
	testFE   = Frontends{Echo: "127.0.0.1:8001", Sink: "127.0.0.1:8002"}
)

func TestBalanceL4ConfigLoads(t *testing.T) {
	cfg, err := config.Parse([]byte(BalanceL4Config(testFE, testEcho, testSink)))
	if err != nil {
		t.Fatalf("generated configuration does not load: %v", err)
	}
	if cfg.Admin.Listen != "" || cfg.Log.AccessLog || cfg.Log.Level != "warn" || len(cfg.Services) != 2 {
		t.Fatalf("config = %+v, want admin off, access log off, level warn, two services", cfg)
	}
	for i, want := range []struct {
		listen   string
		backends []string
	}{{testFE.Echo, testEcho}, {testFE.Sink, testSink}} {
		s := cfg.Services[i]
		if s.Listen != want.listen || s.HealthCheck.Enabled || len(s.Backends) != len(want.backends) {
			t.Fatalf("service %d = %+v, want listen %s, checks off, %d backends", i, s, want.listen, len(want.backends))
		}
		for j, b := range s.Backends {
			if b.Address != want.backends[j] {
				t.Fatalf("service %d backend %d = %s, want %s", i, j, b.Address, want.backends[j])
			}
		}
	}
}

func TestHAProxyConfigIsValid(t *testing.T) {
	bin, err := lookPath("", "haproxy")
	if err != nil {
		t.Skip(err)
	}
	cfg := filepath.Join(t.TempDir(), "h.cfg")
	if err := os.WriteFile(cfg, []byte(HAProxyConfig(2, testFE, testEcho, testSink)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

func TestNginxStreamModule(t *testing.T) {
	dir := t.TempDir()
	so := filepath.Join(dir, "ngx_stream_module.so")
	if err := os.WriteFile(so, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		v          string
		want       string
		wantAbsent bool
	}{
		{"dynamic, installed", "configure arguments: --modules-path=" + dir + " --with-stream=dynamic --with-x", so, false},
		{"dynamic, missing", "configure arguments: --modules-path=" + dir + "/none --with-stream=dynamic", "", true},
		{"static", "configure arguments: --with-stream --with-http_ssl_module", "", false},
		{"static, last", "configure arguments: --with-stream", "", false},
		{"none", "configure arguments: --with-http_ssl_module", "", true},
	}
	for _, tt := range tests {
		got, err := nginxStreamModule(tt.v)
		if got != tt.want || errors.Is(err, ErrAbsent) != tt.wantAbsent || (err != nil) != tt.wantAbsent {
			t.Errorf("%s: nginxStreamModule = %q, %v; want %q, absent %v", tt.name, got, err, tt.want, tt.wantAbsent)
		}
	}
}

func TestNewRejectsUnknownPeer(t *testing.T) {
	env := Env{Backends: startBackends(t).Addrs}
	if _, err := New("squid", env); err == nil {
		t.Fatal("New(squid) succeeded, want an error")
	}
	if _, err := New(Direct, Env{}); err == nil {
		t.Fatal("New without backends succeeded, want an error")
	}
}

func TestBalanceL4AbsentWithoutBinary(t *testing.T) {
	env := Env{Backends: startBackends(t).Addrs, BuildErr: errors.New("no main package")}
	p, err := New(BalanceL4, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Absent(); !errors.Is(err, ErrAbsent) || !strings.Contains(err.Error(), "no main package") {
		t.Fatalf("Absent() = %v, want ErrAbsent naming the build error", err)
	}
	if err := p.Start(context.Background()); !errors.Is(err, ErrAbsent) {
		t.Fatalf("Start() = %v, want ErrAbsent", err)
	}
}

func startBackends(t *testing.T) *Backends {
	t.Helper()
	b, err := StartBackends(context.Background(), child.TestSpawner(), t.TempDir(), "backends", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// TestPeersProxy starts every peer installed here in front of real backends and
// checks an echo and a half-closed stream through each.
func TestPeersProxy(t *testing.T) {
	be := startBackends(t)
	env := Env{Dir: t.TempDir(), Spawn: child.TestSpawner(), Backends: be.Addrs}
	for _, name := range []string{Direct, GoProxy, GoEventLoop, HAProxy1, HAProxy2, Nginx} {
		t.Run(name, func(t *testing.T) {
			p, err := New(name, env)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Absent(); err != nil {
				t.Skip(err)
			}
			if err := p.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.Stop(); err != nil {
					t.Error(err)
				}
			}()
			if err := p.Start(context.Background()); name != Direct && err == nil {
				t.Fatal("second Start succeeded, want an error")
			}
			if err := p.Alive(); err != nil {
				t.Fatal(err)
			}
			fe := p.Frontends()
			checkEcho(t, fe.Echo)
			checkSink(t, fe.Sink)
			if name == Direct {
				if p.PID() != 0 {
					t.Fatalf("direct PID = %d, want 0", p.PID())
				}
				return
			}
			u, err := procstat.Read(p.PID())
			if err != nil || u.RSS == 0 || u.FDs == 0 {
				t.Fatalf("procstat.Read(%s) = %+v, %v; want its memory and fds", name, u, err)
			}
		})
	}
}

func checkEcho(t *testing.T, addr string) {
	t.Helper()
	c := benchtest.Dial(t, addr)
	defer c.Close()
	msg := []byte("ping through the peer")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through %s = %q, %v; want %q", addr, got, err, msg)
	}
}

func checkSink(t *testing.T, addr string) {
	t.Helper()
	c := benchtest.Dial(t, addr)
	defer c.Close()
	if _, err := c.Write(make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(reply, []byte{0, 0, 0, 0, 0, 1, 0x86, 0xa0}) {
		t.Fatalf("sink reply through %s = %x, %v; want 100000 as 8 bytes", addr, reply, err)
	}
}
