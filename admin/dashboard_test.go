package admin

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/admin/admintest"
	"github.com/balancel4/balance-l4/status"
)

func TestDashboardPage(t *testing.T) {
	f := newFixture(t, "")
	rec := f.request("GET", "/?q=pg", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	for _, want := range []string{
		`<tbody class="backend" data-key="web/a" data-state="healthy"`,
		`data-key="web/b" data-state="unhealthy"`,
		`data-key="web/c" data-state="draining"`,
		`data-key="db/pg1"`,
		`>DOWN</span>`, `1 of 2 passes → up`, `>UP</span>`, `0 of 3 fails → down`, `DRAINING`, `health checks failing`,
		`hx-post="/ui/services/web/backends/a/drain"`,
		`hx-post="/ui/services/web/backends/c/undrain"`,
		`hx-post="/ui/services/web/backends/a/weight"`,
		`hx-get="/ui/services" hx-trigger="every 2s, refresh"`,
		`value="pg"`, // the filter from ?q=
		`/static/htmx.min.js?v=`, `/static/dashboard.css?v=`, `/static/dashboard.js?v=`,
		`127.0.0.1:8080`, `round robin`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP = %q", csp)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") || strings.Contains(body, "style=") {
		t.Fatal("inline script or style in the page: the CSP would block it")
	}
}

func TestDashboardEscapesNames(t *testing.T) {
	f := newFixture(t, "")
	mustAdd(t, f.ctrl, status.Service{Name: "x", Backends: []status.Backend{{Name: `<b>"evil"`, Address: "10.0.0.1:1", Weight: 1,
		LastCheck: &status.Check{Error: `<script>alert(1)</script>`}, Health: "unhealthy"}}})
	body := f.request("GET", "/", "").Body.String()
	if strings.Contains(body, `<b>"evil"`) || strings.Contains(body, "<script>alert") {
		t.Fatal("names or errors are not escaped")
	}
	if !strings.Contains(body, "/ui/services/x/backends/%3Cb%3E%22evil%22") {
		t.Fatal("backend URL not path-escaped")
	}
}

func TestDashboardFragmentsAndActions(t *testing.T) {
	f := newFixture(t, "")
	rec := f.request("GET", "/ui/services", "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "<html") || !strings.Contains(rec.Body.String(), `data-key="db/pg1"`) {
		t.Fatalf("GET /ui/services = %d, want the overview fragment only", rec.Code)
	}

	rec = f.request("POST", "/ui/services/web/backends/a/drain", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `<tbody class="backend ineligible" data-key="web/a" data-state="draining"`) {
		t.Fatalf("UI drain = %d %s", rec.Code, rec.Body)
	}
	if calls := f.ctrl.Calls(); len(calls) != 1 || calls[0].By != "dashboard 192.0.2.7:40000 (none)" {
		t.Fatalf("calls = %+v", calls)
	}
	rec = f.request("POST", "/ui/services/web/backends/a/undrain", "")
	if !strings.Contains(rec.Body.String(), `data-state="healthy"`) {
		t.Fatalf("UI undrain: %s", rec.Body)
	}
	rec = f.request("POST", "/ui/services/web/backends/a/disconnect", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("HX-Trigger"), "closed 3 connections of web/a") {
		t.Fatalf("UI disconnect = %d, HX-Trigger %q", rec.Code, rec.Header().Get("HX-Trigger"))
	}

	form := "Content-Type: application/x-www-form-urlencoded"
	rec = f.request("POST", "/ui/services/web/backends/a/weight", "weight=12", form)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `value="12"`) || !strings.Contains(rec.Body.String(), "file 2") {
		t.Fatalf("UI weight = %d %s", rec.Code, rec.Body)
	}
	for _, body := range []string{"weight=", "weight=abc", "weight=1.5", "weight=257", "weight=-1", ""} {
		msg := wantError(t, f.request("POST", "/ui/services/web/backends/a/weight", body, form), http.StatusBadRequest)
		if !strings.Contains(msg, "weight") {
			t.Errorf("body %q: error %q", body, msg)
		}
	}

	// Open event histories are rendered expanded, on refresh and on actions.
	rec = f.request("GET", "/ui/services?open=web/a&open=web/zz", "")
	if n := strings.Count(rec.Body.String(), `<tr class="events">`); n != 1 {
		t.Fatalf("%d event rows, want 1 (web/a)", n)
	}
	if !strings.Contains(rec.Body.String(), "by dashboard 192.0.2.7:40000") {
		t.Fatal("event history lacks who drained")
	}
	rec = f.request("POST", "/ui/services/web/backends/a/drain", "open=web/a", form)
	if !strings.Contains(rec.Body.String(), `<tr class="events">`) || !strings.Contains(rec.Body.String(), `aria-expanded="true"`) {
		t.Fatal("open events not kept by a row action")
	}
	rec = f.request("GET", "/ui/services/web/backends/b", "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `<tr class="events">`) {
		t.Fatalf("GET row = %d, events shown while closed", rec.Code)
	}
}

func TestDashboardReload(t *testing.T) {
	f := newFixture(t, "")
	f.ctrl.SetReload(func(string) (status.Reload, error) {
		return status.Reload{ServicesAdded: []string{"cache"}, Summary: "1 service added"}, nil
	})
	rec := f.request("POST", "/ui/reload", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "1 service added") || !strings.Contains(rec.Body.String(), "services added: cache") {
		t.Fatalf("reload = %d %s", rec.Code, rec.Body)
	}
	f.ctrl.SetReload(func(string) (status.Reload, error) {
		return status.Reload{}, fmt.Errorf("services[0].listen: missing\nservices[1].algorithm: %q is not one of ...", "rr")
	})
	rec = f.request("POST", "/ui/reload", "")
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest || !strings.Contains(body, "services[0].listen: missing") ||
		!strings.Contains(body, "services[1].algorithm") || !strings.Contains(body, "unchanged") {
		t.Fatalf("failed reload = %d %s", rec.Code, body)
	}
}

func TestDashboardGzip(t *testing.T) {
	f := newFixture(t, "")
	ctrl := bigController(t, f.clock, 200)
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: ctrl, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	rec := f.request("GET", "/ui/services", "", "Accept-Encoding: gzip, deflate")
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("large fragment not gzipped")
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	html, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), `<tbody class="backend`); n != 200 {
		t.Fatalf("%d backends after gunzip, want 200", n)
	}
	if rec := f.request("GET", "/ui/services", "", "Accept-Encoding: gzip;q=0"); rec.Header().Get("Content-Encoding") != "" {
		t.Fatal("gzipped although the client refused it")
	}
}

func TestStaticAssets(t *testing.T) {
	f := newFixture(t, "")
	for name, ctype := range map[string]string{
		"htmx.min.js": "text/javascript", "dashboard.css": "text/css", "dashboard.js": "text/javascript", "favicon.svg": "image/svg+xml",
	} {
		rec := f.request("GET", "/static/"+name, "")
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) || rec.Body.Len() == 0 {
			t.Fatalf("GET /static/%s = %d %q", name, rec.Code, rec.Header().Get("Content-Type"))
		}
		etag := rec.Header().Get("ETag")
		if rec := f.request("GET", "/static/"+name, "", "If-None-Match: "+etag); rec.Code != http.StatusNotModified {
			t.Fatalf("revalidation of %s = %d, want 304", name, rec.Code)
		}
	}
	url := f.srv.assets.url("dashboard.css")
	if rec := f.request("GET", url, ""); !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("versioned asset Cache-Control = %q", rec.Header().Get("Cache-Control"))
	}
}

func TestStateBadges(t *testing.T) {
	for _, tc := range []struct {
		b                   status.Backend
		text, streak, class string
	}{
		{status.Backend{State: "healthy", Health: "healthy", ConsecutiveFailures: 0, UnhealthyThreshold: 3}, "UP", "0 of 3 fails → down", "up"},
		{status.Backend{State: "healthy", Health: "healthy", ConsecutiveFailures: 2, UnhealthyThreshold: 3}, "UP", "2 of 3 fails → down", "warn"},
		{status.Backend{State: "unhealthy", Health: "unhealthy", ConsecutiveSuccesses: 1, HealthyThreshold: 2}, "DOWN", "1 of 2 passes → up", "down"},
		{status.Backend{State: "pending", Health: "pending", HealthyThreshold: 2, UnhealthyThreshold: 3}, "PENDING", "", "pending"},
		{status.Backend{State: "draining", Health: "healthy", ActiveConnections: 2}, "DRAINING", "", "drain"},
		{status.Backend{State: "draining", Health: "unhealthy", Drained: true}, "DRAINED", "", "drain"},
	} {
		text, streak, class, title := stateBadge(&tc.b)
		if text != tc.text || streak != tc.streak || class != tc.class || title == "" {
			t.Errorf("%+v: %q %q %q (title %q), want %q %q %q", tc.b, text, streak, class, title, tc.text, tc.streak, tc.class)
		}
	}
}

// bigController has n backends spread over 10 services, with history-worthy
// traffic and some of every state.
func bigController(t testing.TB, clk *clock, n int) *admintest.Controller {
	t.Helper()
	ctrl := admintest.New(clk.Now)
	per := n / 10
	for s := range 10 {
		svc := status.Service{Name: fmt.Sprintf("svc%d", s), Listen: fmt.Sprintf("127.0.0.1:%d", 7000+s), Algorithm: "round_robin"}
		for b := range per {
			be := status.Backend{
				Name: fmt.Sprintf("b%03d", b), Address: fmt.Sprintf("10.%d.%d.%d:8080", s, b/250, b%250), Weight: 1 + b%4,
				ActiveConnections: int64(b % 17), TotalConnections: int64(1000 * b), BytesIn: int64(b) << 20, BytesOut: int64(b) << 24,
				LastCheck: &status.Check{Time: clk.Now(), OK: b%7 != 0, DurationMS: 1.5},
				Events:    []status.Event{{Time: clk.Now(), From: "unhealthy", To: "healthy", Reason: "2 checks ok"}},
			}
			switch b % 7 {
			case 0:
				be.Health, be.LastCheck.Error = "unhealthy", "connection refused"
			case 3:
				be.State = "draining"
			case 5:
				be.Circuit = "open"
			}
			svc.Backends = append(svc.Backends, be)
		}
		mustAdd(t, ctrl, svc)
	}
	return ctrl
}

// BenchmarkDashboard renders the whole page for 1 000 backends with a full
// five minutes of sparkline history each, as GET / does.
func BenchmarkDashboard(b *testing.B) {
	clk := newClock()
	ctrl := bigController(b, clk, 1000)
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: ctrl, Now: clk.Now, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	rng := newRand()
	for range historyLen {
		ctrl.Simulate(rng, 5*time.Second)
		clk.Advance(5 * time.Second)
		srv.history.record(clk.Now(), ctrl.Services())
	}
	f := &fixture{srv: srv}
	rec := f.request("GET", "/", "")
	if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `<tbody class="backend`) != 1000 {
		b.Fatalf("GET / = %d with %d backends", rec.Code, strings.Count(rec.Body.String(), `<tbody class="backend`))
	}
	size := rec.Body.Len()
	b.ReportAllocs()
	for b.Loop() {
		rec := f.request("GET", "/", "")
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
	b.ReportMetric(float64(size)/1024, "KiB/page")
}
