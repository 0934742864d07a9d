package admin

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDashboardDetails checks issue 14's dashboard points in a real
// browser at 1 400 px and at phone width: the reason is whole and wraps, the
// last check's error is clamped to two lines until the history is open, the
// action buttons keep their place when drain becomes undrain and keep clear
// of the card's edge, the totals filter to what they count, reload asks
// first, the sparklines fill their box with 40 s of data, and on a phone the
// backends that need a look come first.
func TestBrowserDashboardDetails(t *testing.T) {
	f := newFixture(t, testToken)
	addDetails(t, f)
	for range 7 { // with the sample Start takes: 8 samples, 40 s
		f.clock.Advance(5 * time.Second)
		f.srv.history.record(f.clock.Now(), f.ctrl.Services())
	}
	base := startServer(t, f)
	ctx := newTab(t)
	row := func(key string) string {
		return fmt.Sprintf(`document.querySelector('tbody.backend[data-key=%q]')`, key)
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 1000), authHeaders(testToken), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('tbody.backend').length === 7`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Rows are swapped by polling: measure within one evaluation.
	if got := eval(`(() => {
		const out = [];
		for (const key of ['web/b', 'disc/new1']) {
			const r = document.querySelector('tbody.backend[data-key="' + key + '"] td.state .reason');
			const td = r.closest('td').getBoundingClientRect(), rr = r.getBoundingClientRect();
			const lh = parseFloat(getComputedStyle(r).lineHeight);
			if (r.scrollWidth > r.clientWidth + 1 || rr.right > td.right + 0.5 || getComputedStyle(r).textOverflow === 'ellipsis')
				out.push(key + ': reason cut (' + r.scrollWidth + ' > ' + r.clientWidth + ')');
			if (key === 'disc/new1' && rr.height < 1.5 * lh) out.push(key + ': long reason did not wrap (' + rr.height + ')');
		}
		return out.join('; ');
	})()`); got != "" {
		t.Error(got)
	}
	// The long check error: two lines, the whole text in its tooltip.
	clamp := `(() => {
		const e = ` + row("disc/long") + `.querySelector('.check-error');
		return e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight);
	})()`
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[float64](clamp))
	if err != nil || lines > 2.05 || lines < 1.5 {
		t.Errorf("the long check error takes %.2f lines (%v), want 2", lines, err)
	}
	if title := eval(row("disc/long") + `.querySelector('.check-error').title`); title != longCheckError {
		t.Errorf("check error tooltip %q", title)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="disc/long"] .events-toggle`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("disc/long")+`.classList.contains('open') && `+clamp+` > 4`, 10*time.Second); err != nil {
		t.Errorf("the check error is not whole with the history open: %v", err)
	}

	// Sparklines: 40 s of data spans the whole box, and the header says so.
	if got := eval(`document.querySelector('section.service[data-service="web"] th.c-spark').textContent + ' | ' +
		document.querySelector('section.service[data-service="web"] .svc-spark dt').textContent + ' | ' +
		` + row("web/a") + `.querySelector('svg.spark polyline').getAttribute('points').split(' ')[0].split(',')[0]`); got != "last 40s | last 40s | 0" {
		t.Errorf("sparkline header | service label | first x = %q, want last 40s | last 40s | 0", got)
	}

	// The action column: drain and undrain take the same place, and
	// disconnect stays clear of the card's right edge.
	geometry := `(() => {
		const r = ` + row("web/a") + `, card = r.closest('section.service').getBoundingClientRect();
		const t = r.querySelector('.drain-toggle').getBoundingClientRect(), d = r.querySelector('.btn.danger').getBoundingClientRect();
		return [Math.round(t.left), Math.round(t.width), Math.round(d.left), Math.round(card.right - d.right)].join(',');
	})()`
	before := eval(geometry)
	if gap, _ := strconv.Atoi(before[strings.LastIndex(before, ",")+1:]); gap < 12 {
		t.Errorf("disconnect is %d px from the card's edge, want 12 or more", gap)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] button[hx-post$="/drain"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("web/a")+`.dataset.state === 'draining' && `+row("web/a")+`.querySelector('.drain-toggle').textContent === 'undrain'`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if after := eval(geometry); after != before {
		t.Errorf("action buttons moved when drain became undrain: left,width,disconnect left,gap %s -> %s", before, after)
	}

	// Reload asks first: declined, nothing happens; confirmed, it reloads.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.confirm = (q) => { window.asked = q; return false; }`),
		chromedp.Click(chromedp.CSS(`#reload`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `window.asked === 'Re-read the configuration file and apply its changes now?'`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, c := range f.ctrl.Calls() {
		if c.Method == "Reload" {
			t.Fatal("reload ran although the confirmation was declined")
		}
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(chromedp.CSS(`#reload`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#reload-result .notice') !== null`, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// The totals filter to what they count; clicked again, everything shows.
	visible := `[...document.querySelectorAll('tbody.backend')].filter(e => e.offsetParent !== null).map(e => e.dataset.key).join(',')`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.totals a.t-down`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, visible+` === 'web/b,disc/long' && new URL(location.href).searchParams.get('q') === 'is:down' && document.querySelector('.totals a.t-down').getAttribute('aria-current') === 'true'`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second) // survives a refresh
	if err := waitJS(ctx, `document.querySelector('.updated').textContent.includes('`+f.clock.Now().Format("15:04:05")+`')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, visible+` === 'web/b,disc/long' && document.querySelector('.totals a.t-down').getAttribute('aria-current') === 'true'`, time.Second); err != nil {
		t.Fatalf("the totals filter was lost by a refresh: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.totals a.t-pending`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, visible+` === 'disc/new1'`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.totals a.t-pending`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('tbody.backend:not([hidden])').length === 7 && document.querySelector('#filter').value === ''`, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// Phone width: down and pending first, then draining, in each service.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] button[hx-post$="/undrain"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("web/a")+`.dataset.state === 'healthy'`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	order := `(svc) => [...document.querySelectorAll('section.service[data-service="' + svc + '"] tbody.backend')]
		.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top).map(e => e.dataset.key).join(',')`
	if err := waitJS(ctx, `(`+order+`)('web') === 'web/b,web/c,web/a' && (`+order+`)('disc') === 'disc/new1,disc/long,disc/10.0.5.1:80'`, 5*time.Second); err != nil {
		web, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+order+`)('web') + ' / ' + (`+order+`)('disc')`))
		t.Fatalf("phone order %s: %v", web, err)
	}
	if err := waitJS(ctx, `document.documentElement.scrollWidth <= window.innerWidth + 1`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "dashboard-details-phone.png", "")
}
