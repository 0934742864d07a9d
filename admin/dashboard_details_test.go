package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// longCheckError is a check error far longer than its column.
var longCheckError = "dial tcp 10.0.5.2:80: connect: connection refused; " + strings.Repeat("and then some more words of a long error ", 6) + "END"

// addDetails adds, besides the fixture's services, a service "disc" with a
// backend named by its address, a pending one and one down with a long
// check error.
func addDetails(t *testing.T, f *fixture) {
	t.Helper()
	mustAdd(t, f.ctrl, status.Service{Name: "disc", Listen: "127.0.0.1:7200", Algorithm: "round_robin",
		Backends: []status.Backend{
			{Name: "10.0.5.1:80", Address: "10.0.5.1:80", Weight: 1},
			{Name: "new1", Address: "10.0.5.3:80", Weight: 1, Health: "pending"},
			{Name: "long", Address: "10.0.5.2:80", Weight: 1, Health: "unhealthy",
				LastCheck: &status.Check{Time: f.clock.Now(), OK: false, DurationMS: 0.2, Error: longCheckError}},
		}})
}

// TestDashboardDetails: the page's wording and markup for issue 14's points:
// the badge says where the checks stand in words, the reason is whole, a
// name that is the address shows it once, the totals link to what they
// count, pending is its own state, reload asks first, and the sparklines
// say the span they cover.
func TestDashboardDetails(t *testing.T) {
	f := newFixture(t, "")
	addDetails(t, f)
	for range 8 { // 8 samples before the page: 40 s of history
		f.clock.Advance(5 * time.Second)
		f.srv.history.record(f.clock.Now(), f.ctrl.Services())
	}
	body := f.request("GET", "/", "").Body.String()
	row := func(key string) string {
		t.Helper()
		i := strings.Index(body, `data-key="`+key+`"`)
		if i < 0 {
			t.Fatalf("no row %s", key)
		}
		j := strings.Index(body[i:], "</tbody>")
		return body[i : i+j]
	}
	for _, want := range []string{
		// the totals link to the backends they count
		`<a class="t-up" href="?q=is:up" data-q="is:up"`, `>3 up</a>`,
		`<a class="t-down" href="?q=is:down" data-q="is:down"`, `>2 down</a>`,
		`<a class="t-pending" href="?q=is:pending" data-q="is:pending"`, `>1 pending</a>`,
		`<a class="t-drain" href="?q=is:draining" data-q="is:draining"`,
		// reload asks
		`hx-post="/ui/reload" hx-target="#reload-result" hx-swap="innerHTML" hx-confirm="Re-read the configuration file and apply its changes now?"`,
		// the span of 8 samples, over the column and the service's chart
		`<dt>last 40s</dt>`, `title="line: active connections; area: throughput">last 40s</th>`,
		`3 backends · 1 eligible · 1 down · 1 pending`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	a := row("web/a")
	for _, want := range []string{`>UP</span>`, `<small class="streak up"`, `>0 of 3 fails → down</small>`, `<code>127.0.0.1:9001</code>`,
		`is:up`, `class="btn drain-toggle" hx-post="/ui/services/web/backends/a/drain"`} {
		if !strings.Contains(a, want) {
			t.Errorf("web/a lacks %q: %s", want, a)
		}
	}
	b := row("web/b")
	for _, want := range []string{`>DOWN</span>`, `>1 of 2 passes → up</small>`, `<small class="reason">health checks failing</small>`, `is:down`} {
		if !strings.Contains(b, want) {
			t.Errorf("web/b lacks %q: %s", want, b)
		}
	}
	if strings.Contains(b, "clip") || strings.Contains(b, `title="health checks failing"`) {
		t.Errorf("web/b's reason is still clipped into a tooltip: %s", b)
	}
	if c := row("web/c"); !strings.Contains(c, `class="btn drain-toggle" hx-post="/ui/services/web/backends/c/undrain"`) || !strings.Contains(c, "is:draining") {
		t.Errorf("web/c: %s", c)
	}
	named := row("disc/10.0.5.1:80")
	nameCell := named[strings.Index(named, `<td class="name"`):strings.Index(named, `<td class="state"`)]
	if n := strings.Count(nameCell, ">10.0.5.1:80<"); n != 1 || strings.Contains(nameCell, "<code>") {
		t.Errorf("a backend named by its address shows it %d times: %s", n, nameCell)
	}
	p := row("disc/new1")
	for _, want := range []string{`data-state="pending"`, `<span class="badge pending"`, `>PENDING</span>`,
		`<small class="reason">waiting for its first health check</small>`, `is:pending`, `<span class="muted">none yet</span>`} {
		if !strings.Contains(p, want) {
			t.Errorf("pending row lacks %q: %s", want, p)
		}
	}
	if strings.Contains(p, "streak") {
		t.Errorf("a pending backend has a threshold streak: %s", p)
	}
	long := row("disc/long")
	if !strings.Contains(long, `<small class="reason check-error" title="`+longCheckError+`">`+longCheckError+`</small>`) {
		t.Errorf("the long check error is not whole with its tooltip: %s", long)
	}

	// A single row rendered by an action has the service's axis too, and an
	// open history marks the row open (the check error shows whole).
	rec := f.request("GET", "/ui/services/disc/backends/long?open=disc/long", "")
	if !strings.Contains(rec.Body.String(), `<tbody class="backend ineligible open"`) || !strings.Contains(rec.Body.String(), `data-label="last 40s"`) {
		t.Errorf("row fragment: %s", rec.Body)
	}
}
