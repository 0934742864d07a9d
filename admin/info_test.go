package admin

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/admin/admintest"
)

func TestInfoNamesTheProcess(t *testing.T) {
	clk := newClock()
	srv, err := New(Options{Listen: "127.0.0.1:0", Version: "v9.8.7", Controller: admintest.New(clk.Now), Now: clk.Now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, clock: clk}
	rec := f.request(http.MethodGet, "/api/v1/info", "")
	var info Info
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &info) != nil {
		t.Fatalf("GET /api/v1/info: %d %s", rec.Code, rec.Body)
	}
	if info.Version != "v9.8.7" || info.PID != os.Getpid() || !info.Started.Equal(clk.Now().UTC()) {
		t.Fatalf("info %+v", info)
	}
	page := f.request(http.MethodGet, "/", "").Body.String()
	if !strings.Contains(page, "balance-l4 v9.8.7") {
		t.Error("the dashboard does not show the version")
	}
}

// Options.ListenFunc opens the listener (an upgrade hands one over).
func TestListenFunc(t *testing.T) {
	var asked string
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: admintest.New(time.Now), Log: zerolog.Nop(),
		ListenFunc: func(network, addr string) (net.Listener, error) {
			asked = network + " " + addr
			return net.Listen(network, addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	if asked != "tcp 127.0.0.1:0" {
		t.Fatalf("ListenFunc asked for %q", asked)
	}
	resp, err := http.Get("http://" + srv.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
