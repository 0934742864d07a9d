package admin

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/balancel4/balance-l4/status"
	"github.com/balancel4/balance-l4/web"
)

// The dashboard: GET / renders the page; the page polls GET /ui/services every
// 2 s and swaps only the service tables, so the filter box, the focus and the
// scroll position stay. Each backend is its own <tbody>, which the row actions
// (drain, undrain, disconnect, weight) replace in place. The page tells the
// server which backends have their event history open (parameter "open", one
// "service/backend" each), and the server renders those expanded.

func parsePages() (*template.Template, error) {
	t, err := template.New("dashboard").ParseFS(web.Templates(), "*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing dashboard templates: %w", err)
	}
	return t, nil
}

func (s *Server) dashboard(c echo.Context) error {
	v := pageView{
		Filter:   c.QueryParam("q"),
		HtmxURL:  s.assets.url("htmx.min.js"),
		CSSURL:   s.assets.url("dashboard.css"),
		JSURL:    s.assets.url("dashboard.js"),
		IconURL:  s.assets.url("favicon.svg"),
		ReadOnly: roleOf(c) == roleRead,
		Overview: s.overview(s.ctrl.Services(), viewerOf(c)),
	}
	return s.render(c, http.StatusOK, "page", v)
}

func (s *Server) uiServices(c echo.Context) error {
	return s.render(c, http.StatusOK, "overview", s.overview(s.ctrl.Services(), viewerOf(c)))
}

func (s *Server) uiBackend(c echo.Context) error {
	svc, name, err := backendParams(c)
	if err != nil {
		return err
	}
	b, err := s.ctrl.Backend(svc, name)
	if err != nil {
		return err
	}
	return s.renderBackend(c, svc, b)
}

func (s *Server) uiDrain(c echo.Context) error   { return s.uiAction(c, drainOp, "drained") }
func (s *Server) uiUndrain(c echo.Context) error { return s.uiAction(c, undrainOp, "undrained") }

// uiAction runs op and answers with the backend's row. A failure, such as a
// 503 while the fleet store is unreachable, is the usual JSON error, which the
// page shows as a toast (with a button to repeat the change with scope=local).
func (s *Server) uiAction(c echo.Context, op backendOp, done string) error {
	svc, b, scope, err := s.runAction(c, "dashboard", op)
	if err != nil {
		return err
	}
	if localAsked(c, scope) {
		toast(c, fmt.Sprintf("%s/%s %s on this instance only; %s", svc, b.Name, done, localNote))
	}
	return s.renderBackend(c, svc, b)
}

// localNote says what a change made with scope=local means.
const localNote = "the next fleet-wide change to it replaces this"

// localAsked says whether the request asked for scope=local and got it.
func localAsked(c echo.Context, scope string) bool {
	return scope == status.ScopeLocal && c.QueryParam("scope") == status.ScopeLocal
}

func (s *Server) uiDisconnect(c echo.Context) error {
	svc, name, n, err := s.runDisconnect(c, "dashboard")
	if err != nil {
		return err
	}
	b, err := s.ctrl.Backend(svc, name)
	if err != nil {
		return err
	}
	toast(c, fmt.Sprintf("closed %d connection%s of %s/%s", n, plural(n), svc, name))
	return s.renderBackend(c, svc, b)
}

func (s *Server) uiSetWeight(c echo.Context) error {
	svc, b, w, scope, err := s.runSetWeight(c, "dashboard", func() (int, error) {
		if err := c.Request().ParseForm(); err != nil {
			return 0, fmt.Errorf("reading weight form: %w", err)
		}
		return parseWeight(strings.TrimSpace(c.Request().PostForm.Get("weight")))
	})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("weight of %s/%s set to %d", svc, b.Name, w)
	if localAsked(c, scope) {
		msg += " on this instance only; " + localNote
	}
	toast(c, msg)
	return s.renderBackend(c, svc, b)
}

// reloadView is the dashboard's reload result.
type reloadView struct {
	OK      bool
	Summary string
	Errors  []string
	Changes []string
}

func (s *Server) uiReload(c echo.Context) error {
	by := who(c, "dashboard")
	r, err := s.ctrl.Reload(by.String())
	s.logAction(by, "reload", "", "", err).Str("summary", r.Summary).Msg("admin action")
	if err != nil {
		return s.render(c, http.StatusBadRequest, "reload", reloadView{
			Summary: "reload refused; the running configuration is unchanged",
			Errors:  strings.Split(strings.TrimSpace(err.Error()), "\n"),
		})
	}
	v := reloadView{OK: true, Summary: r.Summary}
	for _, ch := range []struct {
		what  string
		names []string
	}{
		{"services added", r.ServicesAdded}, {"services removed", r.ServicesRemoved},
		{"services changed", r.ServicesChanged}, {"backends added", r.BackendsAdded},
		{"backends removed", r.BackendsRemoved}, {"backends changed", r.BackendsChanged},
	} {
		if len(ch.names) > 0 {
			v.Changes = append(v.Changes, ch.what+": "+strings.Join(ch.names, ", "))
		}
	}
	if v.Summary == "" && len(v.Changes) == 0 {
		v.Summary = "configuration reloaded, nothing changed"
	}
	return s.render(c, http.StatusOK, "reload", v)
}

func (s *Server) renderBackend(c echo.Context, svc string, b status.Backend) error {
	var p points
	s.history.service(svc, &p)
	v := s.backendView(svc, &b, viewerOf(c), s.now(), &p, len(p.active))
	return s.render(c, http.StatusOK, "backend", v)
}

// renderBuffers are reused: the page of 1 000 backends is about 2 MB, and
// growing a fresh buffer to that size each time was most of a render's cost.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps one huge page from pinning its buffer forever.
const maxPooledBuffer = 16 << 20

// render executes a template into a buffer first, so a failing template never
// sends half a page.
func (s *Server) render(c echo.Context, code int, name string, data any) error {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			renderBuffers.Put(buf)
		}
	}()
	if err := s.pages.ExecuteTemplate(buf, name, data); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	return c.HTMLBlob(code, buf.Bytes())
}

// toast asks the page to show a short message (dashboard.js listens).
func toast(c echo.Context, msg string) {
	c.Response().Header().Set("HX-Trigger", `{"balance:toast":`+strconv.Quote(msg)+`}`)
}

// viewer is what a page depends on besides the data: which event histories
// the page has open, and whether the viewer may act (a read-only token sees
// no action control and no weight editor: they are not rendered at all).
type viewer struct {
	open     map[string]bool
	readOnly bool
}

func viewerOf(c echo.Context) viewer {
	return viewer{open: openSet(c), readOnly: roleOf(c) == roleRead}
}

// openSet reads the "open" parameters (query and form) the page sends.
func openSet(c echo.Context) map[string]bool {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return nil
	}
	vals := r.Form["open"]
	if len(vals) == 0 {
		return nil
	}
	set := make(map[string]bool, len(vals))
	for _, v := range vals {
		set[v] = true
	}
	return set
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
