package admin

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's headless chromium against a real admin
// server on 127.0.0.1. One browser serves the whole test binary (TestMain
// closes it); each test opens its own tab. Without chromium they skip, except
// under CI (env CI set), where they fail.

var shared struct {
	once    sync.Once
	ctx     context.Context // the browser; tabs are made from it
	cancel  func()
	dataDir string
	err     error
}

func findChromium() string {
	if p := os.Getenv("BALANCE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newTab returns a fresh tab of the shared browser, closed at the end of t.
func newTab(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found (apt-get install chromium); the browser tests are required under CI")
		}
		t.Skip("chromium not found; install it (apt-get install chromium) to run the browser tests")
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "balance-admin-chromium-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dataDir = dir
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1440, 900),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelBrowser := chromedp.NewContext(allocCtx)
		shared.ctx = ctx
		shared.cancel = func() { cancelBrowser(); cancelAlloc() }
		shared.err = chromedp.Do(ctx) // starts the browser
	})
	if shared.err != nil {
		t.Fatalf("starting chromium %s: %v", path, shared.err)
	}
	tab, cancel := chromedp.NewContext(shared.ctx)
	t.Cleanup(cancel)
	tab, cancelTimeout := context.WithTimeout(tab, 40*time.Second)
	t.Cleanup(cancelTimeout)
	return tab
}

func closeBrowser() {
	if shared.cancel != nil {
		shared.cancel()
	}
	if shared.dataDir != "" {
		os.RemoveAll(shared.dataDir)
	}
}

// waitJS evaluates a JavaScript condition until it is true, every 50 ms, for
// at most limit; it returns the last evaluation error or a timeout error.
func waitJS(ctx context.Context, cond string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("waiting for %s: %w", cond, err)
			}
			return fmt.Errorf("waiting for %s: still false after %v", cond, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startServer starts f's server on a real loopback listener.
func startServer(t *testing.T, f *fixture) string {
	t.Helper()
	if err := f.srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return "http://" + f.srv.Addr().String()
}

// authHeaders makes the tab send the token as Basic auth, as a browser does
// once the user has answered the prompt.
func authHeaders(token string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+token))
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": auth},
		})
		return err
	})
}

// screenshot saves a full-page PNG (quality 100 means PNG) in t.TempDir() and,
// when alsoTo is set, there too.
func screenshot(t *testing.T, ctx context.Context, name string, alsoTo string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	if alsoTo != "" {
		if err := os.WriteFile(alsoTo, png, 0o644); err != nil {
			t.Fatalf("writing BALANCE_SCREENSHOT: %v", err)
		}
		t.Logf("screenshot: %s", alsoTo)
	}
}

func TestBrowserDashboard(t *testing.T) {
	f := newFixture(t, testToken)
	base := startServer(t, f)
	ctx := newTab(t)
	row := func(key string) string {
		return fmt.Sprintf(`document.querySelector('tbody.backend[data-key=%q]')`, key)
	}

	if err := chromedp.Do(ctx, authHeaders(testToken), chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	// Every backend is listed.
	if err := waitJS(ctx, `document.querySelectorAll('tbody.backend').length === 4`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#overview').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web", "db", "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", "10.0.0.11:5432",
		"DOWN", "1 of 2 passes → up", "UP", "0 of 3 fails → down", "DRAINING", "connection refused"} {
		if !strings.Contains(text, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	// A marker that a navigation would lose.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.balanceMarker = 42`)); err != nil {
		t.Fatal(err)
	}
	noReload := func(step string) {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.balanceMarker || 0`))
		if err != nil || n != 42 {
			t.Fatalf("%s: the page was reloaded (marker %d, %v)", step, n, err)
		}
	}

	// Drain from the page: the row turns draining in place.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] button[hx-post$="/drain"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("web/a")+`.dataset.state === 'draining' && `+row("web/a")+`.textContent.includes('DRAINING')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	noReload("drain click")
	if b, _ := f.ctrl.Backend("web", "a"); b.State != "draining" {
		t.Fatalf("controller says %q after the drain click", b.State)
	}
	calls := f.ctrl.Calls()
	if len(calls) != 1 || calls[0].Method != "Drain" || !strings.HasPrefix(calls[0].By, "dashboard ops@127.0.0.1:") {
		t.Fatalf("calls = %+v, want one Drain by the dashboard", calls)
	}

	// A drain made through the API shows up on the open page by polling.
	req, _ := http.NewRequest("POST", base+"/api/v1/services/db/backends/pg1/drain", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API drain = %d", resp.StatusCode)
	}
	if err := waitJS(ctx, row("db/pg1")+`.dataset.state === 'draining'`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	noReload("API drain")

	// Undrain restores it.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] button[hx-post$="/undrain"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("web/a")+`.dataset.state === 'healthy' && `+row("web/a")+`.textContent.includes('0 of 3 fails → down')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// The weight edit.
	input := `tbody.backend[data-key="web/a"] input[name=weight]`
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(input), ""),
		chromedp.SendKeys(chromedp.CSS(input), "9"),
		chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] form.weight button`)),
	); err != nil {
		t.Fatal(err)
	}
	// The row comes back from the server with the new weight and the file's
	// weight beside it.
	if err := waitJS(ctx, `document.querySelector('`+input+`').value === '9' && `+row("web/a")+`.textContent.includes('file 2')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, _ := f.ctrl.Backend("web", "a"); b.Weight != 9 {
		t.Fatalf("weight = %d after the edit, want 9", b.Weight)
	}
	// A weight out of range is stopped by the browser (max=256) and, where
	// the browser does not check, by the server, whose error shows as a toast.
	// One evaluation, so no refresh can swap the row in between.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`{
		const i = document.querySelector('`+input+`');
		i.removeAttribute('max');
		i.value = '300';
		i.form.requestSubmit();
	}`)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `[...document.querySelectorAll('.toast.error')].some(e => e.textContent.includes('out of range'))`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, _ := f.ctrl.Backend("web", "a"); b.Weight != 9 {
		t.Fatalf("weight = %d after a refused edit", b.Weight)
	}
	noReload("weight edit")

	// Event history opens on click and stays open across refreshes.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/a"] .events-toggle`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("web/a")+`.querySelector('tr.events') !== null && `+row("web/a")+`.querySelector('tr.events').textContent.includes('draining')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second) // the next refresh shows a new "updated" time
	if err := waitJS(ctx, `document.querySelector('.updated').textContent.includes('14:30:01')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, row("web/a")+`.querySelector('tr.events') !== null`, time.Second); err != nil {
		t.Fatalf("event history closed by a refresh: %v", err)
	}

	// The filter hides rows, and keeps doing so across refreshes.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#filter`), "pg1")); err != nil {
		t.Fatal(err)
	}
	visible := `[...document.querySelectorAll('tbody.backend')].filter(e => e.offsetParent !== null).map(e => e.dataset.key).join(',')`
	if err := waitJS(ctx, visible+` === 'db/pg1'`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if err := waitJS(ctx, `document.querySelector('.updated').textContent.includes('14:30:02')`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, visible+` === 'db/pg1'`, time.Second); err != nil {
		t.Fatalf("filter lost by a refresh: %v", err)
	}
	screenshot(t, ctx, "dashboard-filtered.png", "")
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`{
		const f = document.querySelector('#filter');
		f.value = '';
		f.dispatchEvent(new Event('input'));
	}`)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, visible+` === 'web/a,web/b,web/c,db/pg1'`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	noReload("filter")
	screenshot(t, ctx, "dashboard.png", "")
}

// TestBrowserScreenshot renders the demo fleet (three services, backends
// draining, down, with open and half-open circuits, five minutes of traffic
// history) at desktop and phone widths. With BALANCE_SCREENSHOT=path the
// desktop one is also written there (docs/dashboard.png is made so).
func TestBrowserScreenshot(t *testing.T) {
	f := newDemoFixture(t)
	base := startServer(t, f)
	ctx := newTab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('tbody.backend').length === 12 && document.querySelectorAll('svg.spark polyline').length >= 12`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Show one event history, as an operator looking into a failure would.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tbody.backend[data-key="web/web-c"] .events-toggle`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('tbody.backend[data-key="web/web-c"] tr.events') !== null`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "dashboard.png", os.Getenv("BALANCE_SCREENSHOT"))

	// Phone width: no horizontal scrolling of the page, and no table either:
	// backends become cards.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.documentElement.scrollWidth <= window.innerWidth + 1`, 5*time.Second); err != nil {
		w, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		t.Fatalf("page is %d px wide at phone width: %v", w, err)
	}
	screenshot(t, ctx, "dashboard-phone.png", "")
	if path := os.Getenv("BALANCE_SCREENSHOT_PHONE"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()) // what the phone's screen shows
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newDemoFixture is a server on admintest.Demo with 5 minutes of sampled
// traffic history.
func newDemoFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, "")
	demo := demoController(f.clock)
	srv, err := New(Options{Listen: "127.0.0.1:0", Controller: demo, Now: f.clock.Now, Log: f.srv.log, SampleEvery: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.ctrl = srv, demo
	rng := newRand()
	for range historyLen - 1 {
		demo.Simulate(rng, 5*time.Second)
		f.clock.Advance(5 * time.Second)
		srv.history.record(f.clock.Now(), demo.Services())
	}
	demo.Simulate(rng, 5*time.Second)
	f.clock.Advance(5 * time.Second) // Start takes the last sample
	return f
}
