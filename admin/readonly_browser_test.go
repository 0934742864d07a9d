package admin

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserReadOnly opens the dashboard in chromium with the read-only
// token, then with the full one: the first shows every backend and no
// control at all (no button but the event toggles, no form, nothing htmx
// could post), across a live refresh; the second has them all.
func TestBrowserReadOnly(t *testing.T) {
	f := newReadFixture(t)
	base := startServer(t, f)

	const controls = `document.querySelectorAll('[hx-post], form, input[name=weight], #reload, button:not(.events-toggle)').length`
	const rows = `document.querySelectorAll('tbody.backend').length`

	ro := newTab(t)
	if err := chromedp.Do(ro, authHeaders(testReadToken), chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	if err := waitJS(ro, rows+` === 4 && document.querySelector('#read-only') !== null`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ro, chromedp.Evaluate[int](controls)); err != nil || n != 0 {
		t.Fatalf("read-only page has %d controls (%v)", n, err)
	}
	// A live refresh renders the rows again, still without controls, with
	// the weights as text.
	f.clock.Advance(time.Second)
	if err := waitJS(ro, `document.querySelector('.updated').textContent.includes('14:30:01')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ro, chromedp.Evaluate[int](controls)); err != nil || n != 0 {
		t.Fatalf("read-only page has %d controls after a refresh (%v)", n, err)
	}
	if w, err := chromedp.Run(ro, chromedp.Evaluate[string](`document.querySelector('tbody.backend[data-key="web/a"] .weight-value').textContent`)); err != nil || w != "2" {
		t.Fatalf("weight shown as %q (%v), want 2", w, err)
	}
	// The event history still opens: reading is allowed.
	if err := chromedp.Do(ro, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/c"] .events-toggle`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ro, `document.querySelector('tbody.backend[data-key="web/c"] tr.events') !== null`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ro, "dashboard-read-only.png", "")

	full := newTab(t)
	if err := chromedp.Do(full, authHeaders(testToken), chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	if err := waitJS(full, rows+` === 4`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Per backend: a drain or undrain, a disconnect, a weight form; and the reload button.
	if n, err := chromedp.Run(full, chromedp.Evaluate[int](`document.querySelectorAll('[hx-post]').length`)); err != nil || n != 4*3+1 {
		t.Fatalf("full-token page has %d hx-post controls (%v), want 13", n, err)
	}
	if n, err := chromedp.Run(full, chromedp.Evaluate[int](`document.querySelectorAll('#read-only').length`)); err != nil || n != 0 {
		t.Fatalf("full-token page says read-only (%v)", err)
	}
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("calls = %+v, want none", calls)
	}
}
