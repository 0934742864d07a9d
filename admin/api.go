package admin

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/balancel4/balance-l4/status"
)

// The JSON API of SPEC §4. Views are served as the controller gives them, with
// nil lists turned into empty arrays so clients can always iterate.

func (s *Server) listServices(c echo.Context) error {
	svcs := s.ctrl.Services()
	for i := range svcs {
		normaliseService(&svcs[i])
	}
	if svcs == nil {
		svcs = []status.Service{}
	}
	return c.JSON(http.StatusOK, svcs)
}

func (s *Server) getService(c echo.Context) error {
	name, err := pathParam(c, "service")
	if err != nil {
		return err
	}
	svc, err := s.ctrl.Service(name)
	if err != nil {
		return err
	}
	normaliseService(&svc)
	return c.JSON(http.StatusOK, svc)
}

func (s *Server) getBackend(c echo.Context) error {
	svc, name, err := backendParams(c)
	if err != nil {
		return err
	}
	b, err := s.ctrl.Backend(svc, name)
	if err != nil {
		return err
	}
	normaliseBackend(&b)
	return c.JSON(http.StatusOK, b)
}

func (s *Server) drain(c echo.Context) error   { return s.apiAction(c, drainOp) }
func (s *Server) undrain(c echo.Context) error { return s.apiAction(c, undrainOp) }

// runAction reads the backend from the path and the scope from the query,
// runs op on behalf of whoever asked (origin "api" or "dashboard") and logs it.
// scope is where the change applied ("fleet" or "local").
func (s *Server) runAction(c echo.Context, origin string, op backendOp) (svc string, b status.Backend, scope string, err error) {
	svc, name, err := backendParams(c)
	if err != nil {
		return "", b, "", err
	}
	local, scope, err := s.actionScope(c)
	if err != nil {
		return "", b, "", err
	}
	by := who(c, origin)
	if local {
		b, err = op.local(s.fleet, svc, name, by.String())
	} else {
		b, err = op.fleet(s.ctrl, svc, name, by.String())
	}
	s.logAction(by, op.name, svc, name, err).Str("scope", scope).Msg("admin action")
	return svc, b, scope, err
}

func (s *Server) apiAction(c echo.Context, op backendOp) error {
	_, b, _, err := s.runAction(c, "api", op)
	if err != nil {
		return err
	}
	normaliseBackend(&b)
	return c.JSON(http.StatusOK, b)
}

// closedBody is the answer to disconnect.
type closedBody struct {
	Closed int `json:"closed"`
}

func (s *Server) disconnect(c echo.Context) error {
	_, _, n, err := s.runDisconnect(c, "api")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, closedBody{Closed: n})
}

// runDisconnect closes the path's backend's connections on behalf of whoever
// asked, and logs it.
func (s *Server) runDisconnect(c echo.Context, origin string) (svc, name string, n int, err error) {
	if svc, name, err = backendParams(c); err != nil {
		return "", "", 0, err
	}
	by := who(c, origin)
	n, err = s.ctrl.Disconnect(svc, name, by.String())
	s.logAction(by, "disconnect", svc, name, err).Int("closed", n).Msg("admin action")
	return svc, name, n, err
}

func (s *Server) setWeight(c echo.Context) error {
	_, b, _, _, err := s.runSetWeight(c, "api", func() (int, error) { return decodeWeight(c.Request().Body) })
	if err != nil {
		return err
	}
	normaliseBackend(&b)
	return c.JSON(http.StatusOK, b)
}

// runSetWeight sets the path's backend's weight, read by weight (a JSON body
// for the API, a form for the dashboard), in the scope the query asks for, on
// behalf of whoever asked, and logs it.
func (s *Server) runSetWeight(c echo.Context, origin string, weight func() (int, error)) (svc string, b status.Backend, w int, scope string, err error) {
	svc, name, err := backendParams(c)
	if err != nil {
		return "", b, 0, "", err
	}
	local, scope, err := s.actionScope(c)
	if err != nil {
		return "", b, 0, "", err
	}
	if w, err = weight(); err != nil {
		return "", b, 0, "", err
	}
	by := who(c, origin)
	if local {
		b, err = s.fleet.SetWeightLocal(svc, name, w, by.String())
	} else {
		b, err = s.ctrl.SetWeight(svc, name, w, by.String())
	}
	s.logAction(by, "set weight", svc, name, err).Int("weight", w).Str("scope", scope).Msg("admin action")
	return svc, b, w, scope, err
}

// reload answers 400 with the controller's message, which lists every problem,
// for any failure: the running configuration is untouched either way.
func (s *Server) reload(c echo.Context) error {
	by := who(c, "api")
	r, err := s.ctrl.Reload(by.String())
	s.logAction(by, "reload", "", "", err).Str("summary", r.Summary).Msg("admin action")
	switch {
	case errors.Is(err, status.ErrUnavailable):
		return err // 503: the reload was not tried (an upgrade in progress)
	case err != nil:
		return c.JSON(http.StatusBadRequest, errorBody{Error: err.Error()})
	}
	normaliseReload(&r)
	return c.JSON(http.StatusOK, r)
}

// pathParam returns a path parameter decoded: Echo matches on the escaped path
// when there is one and leaves parameters escaped (a backend named after its
// address may hold characters that a client escapes).
func pathParam(c echo.Context, name string) (string, error) {
	v, err := url.PathUnescape(c.Param(name))
	if err != nil {
		return "", httpError(http.StatusBadRequest, "bad %s in path: %v", name, err)
	}
	return v, nil
}

func backendParams(c echo.Context) (svc, backend string, err error) {
	if svc, err = pathParam(c, "service"); err != nil {
		return "", "", err
	}
	if backend, err = pathParam(c, "backend"); err != nil {
		return "", "", err
	}
	return svc, backend, nil
}

// actor is who asked for a change, for the log and the controller's events:
// through which door (the API or the dashboard), with which kind of token
// ("token", "read" or "none"; see role) and from which address. A Basic auth
// user name is shown too, but it is not verified: only the token is.
type actor struct {
	via  string // "api" | "dashboard"
	kind string
	user string
	addr string
}

func who(c echo.Context, via string) actor {
	user, _ := c.Get(ctxUser).(string)
	return actor{via: via, kind: roleOf(c).kind(), user: user, addr: c.Request().RemoteAddr}
}

// String is the "by" given to the controller, which puts it in the
// backend's events: "api 127.0.0.1:51234 (token)", or
// "dashboard alice@127.0.0.1:51234 (token)" with a Basic user name.
func (a actor) String() string {
	from := a.addr
	if a.user != "" {
		from = a.user + "@" + from
	}
	return a.via + " " + from + " (" + a.kind + ")"
}

func normaliseService(s *status.Service) {
	if s.Backends == nil {
		s.Backends = []status.Backend{}
	}
	for i := range s.Backends {
		normaliseBackend(&s.Backends[i])
	}
}

func normaliseBackend(b *status.Backend) {
	if b.Events == nil {
		b.Events = []status.Event{}
	}
}

func normaliseReload(r *status.Reload) {
	for _, l := range []*[]string{&r.ServicesAdded, &r.ServicesRemoved, &r.ServicesChanged,
		&r.BackendsAdded, &r.BackendsRemoved, &r.BackendsChanged} {
		if *l == nil {
			*l = []string{}
		}
	}
}
