package admin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/balancel4/balance-l4/status"
)

// TestBrowserFleet: in a fleet whose store is unreachable, the page shows the
// banner, the instances with the one that disagrees marked, on how many
// instances a backend drains, and a drain or weight change refused with 503
// as an error toast whose "apply here only" repeats it with scope=local.
func TestBrowserFleet(t *testing.T) {
	f := newFleetFixture(t, testToken)
	f.disconnect(t, 72*time.Second)
	base := startServer(t, f)
	ctx := newTab(t)
	row := func(key string) string {
		return fmt.Sprintf(`document.querySelector('tbody.backend[data-key=%q]')`, key)
	}
	instance := func(id string) string {
		return fmt.Sprintf(`document.querySelector('#fleet tr.instance[data-instance=%q]')`, id)
	}
	wait := func(cond string) {
		t.Helper()
		if err := waitJS(ctx, cond, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	if err := chromedp.Do(ctx, authHeaders(testToken), chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	wait(`document.querySelectorAll('tbody.backend').length === 4`)

	// The banner, at the top, with how long and the last error.
	wait(`document.querySelector('#fleet-banner') !== null`)
	banner, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#fleet-banner').innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(banner, "Fleet store unreachable for 1m 12s — serving with the last applied state; changes need ?scope=local") ||
		!strings.Contains(banner, storeDown) {
		t.Fatalf("banner = %q", banner)
	}
	wait(`(() => { const r = document.querySelector('#fleet-banner').getBoundingClientRect();
		return r.height > 0 && r.top < document.querySelector('#fleet').getBoundingClientRect().top; })()`)

	// The instances: lb-c disagrees (another configuration, behind), visibly
	// and with an explanation; lb-b agrees; lb-a is this one.
	wait(`document.querySelectorAll('#fleet tr.instance').length === 3`)
	wait(instance("lb-c") + `.classList.contains('disagree')`)
	marks, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...`+instance("lb-c")+`.querySelectorAll('.badge')]
		.filter(b => b.offsetParent !== null && b.title.length > 20).map(b => b.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(marks, ",") != "config differs,behind" {
		t.Fatalf("lb-c marks = %v", marks)
	}
	wait(`!` + instance("lb-b") + `.classList.contains('disagree') && ` + instance("lb-b") + `.textContent.includes('agrees')`)
	wait(instance("lb-a") + `.textContent.includes('this instance') && ` + instance("lb-a") + `.querySelector('a').href === 'http://127.0.0.1:9090/'`)
	wait(instance("lb-c") + `.textContent.includes('fedcba987654')`)

	// A backend draining on two of three instances.
	wait(row("web/c") + `.textContent.includes('draining on 2/3')`)
	screenshot(t, ctx, "dashboard-fleet-unreachable.png", "")

	// A drain refused with 503: the message as an error toast; nothing changed.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] button[hx-post$="/drain"]`))); err != nil {
		t.Fatal(err)
	}
	errorToast := `[...document.querySelectorAll('.toast.error')].find(e => e.textContent.includes('fleet store unreachable: ` + storeDown + `'))`
	wait(errorToast + ` !== undefined`)
	wait(errorToast + `.querySelector('button.toast-action').textContent === 'apply here only'`)
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("calls = %+v after a refused drain", calls)
	}
	wait(row("web/a") + `.dataset.state === 'healthy'`)
	screenshot(t, ctx, "dashboard-fleet-503.png", "")

	// "apply here only" drains on this instance alone.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](errorToast+`.querySelector('button.toast-action').click()`)); err != nil {
		t.Fatal(err)
	}
	wait(row("web/a") + `.dataset.state === 'draining' && ` + row("web/a") + `.querySelector('.badge.diverged') !== null`)
	wait(row("web/a") + `.querySelector('.badge.diverged').title === 'changed with scope=local on this instance; the next fleet-wide change replaces it'`)
	wait(`[...document.querySelectorAll('.toast.info')].some(e => e.textContent.includes('web/a drained on this instance only'))`)
	calls := f.ctrl.Calls()
	if len(calls) != 1 || calls[0].Method != "DrainLocal" || !strings.HasPrefix(calls[0].By, "dashboard ops@127.0.0.1:") {
		t.Fatalf("calls = %+v, want one DrainLocal by the dashboard", calls)
	}

	// The same for a weight: the value typed is the one applied here.
	input := `tbody.backend[data-key="db/pg1"] input[name=weight]`
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(input), ""),
		chromedp.SendKeys(chromedp.CSS(input), "7"),
		chromedp.Click(chromedp.CSS(`tbody.backend[data-key="db/pg1"] form.weight button`)),
	); err != nil {
		t.Fatal(err)
	}
	wait(errorToast + ` !== undefined`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](errorToast+`.querySelector('button.toast-action').click()`)); err != nil {
		t.Fatal(err)
	}
	wait(`document.querySelector('` + input + `').value === '7' && ` + row("db/pg1") + `.querySelector('.badge.diverged') !== null`)
	calls = f.ctrl.Calls()
	if len(calls) != 2 || calls[1].Method != "SetWeightLocal" || calls[1].Weight != 7 {
		t.Fatalf("calls = %+v, want SetWeightLocal 7 after the DrainLocal", calls)
	}

	// The store is back: the banner goes on the next refresh, fleet-wide
	// changes work again and end the divergence.
	if err := f.ctrl.UpdateFleet(func(fl *status.Fleet) { fl.Connected, fl.DisconnectedSince, fl.LastError = true, nil, "" }); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`)); err != nil {
		t.Fatal(err)
	}
	wait(`document.querySelector('#fleet-banner') === null && document.querySelector('#fleet').dataset.connected === 'true'`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] button[hx-post$="/undrain"]`))); err != nil {
		t.Fatal(err)
	}
	wait(row("web/a") + `.dataset.state === 'healthy' && ` + row("web/a") + `.querySelector('.badge.diverged') === null`)
	screenshot(t, ctx, "dashboard-fleet.png", "")

	// Phone width: the instances become cards too; the page does not scroll sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	wait(`document.documentElement.scrollWidth <= window.innerWidth + 1 && document.querySelector('#fleet table.instances thead').offsetParent === null`)
	screenshot(t, ctx, "dashboard-fleet-phone.png", "")
}
