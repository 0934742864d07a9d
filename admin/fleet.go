package admin

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/balancel4/balance-l4/status"
)

// The fleet's side of the admin server (SPEC §6): GET /api/v1/fleet, and the
// ?scope= of drain, undrain and weight. Outside a fleet (a controller that is
// no FleetController, or whose Fleet says ok=false) there is no fleet view and
// every change is local, made with the Controller's own methods.

// notInFleet is the 404 of GET /api/v1/fleet outside a fleet.
const notInFleet = "not part of a fleet: this instance has no [fleet] etcd endpoints configured"

// fleetView returns this instance's view of its fleet; ok is false outside one.
func (s *Server) fleetView() (status.Fleet, bool) {
	if s.fleet == nil {
		return status.Fleet{}, false
	}
	return s.fleet.Fleet()
}

func (s *Server) getFleet(c echo.Context) error {
	f, ok := s.fleetView()
	if !ok {
		// Written here: the error handler words every 404 HTTPError as "no route".
		return c.JSON(http.StatusNotFound, errorBody{Error: notInFleet})
	}
	normaliseFleet(&f)
	return c.JSON(http.StatusOK, f)
}

func normaliseFleet(f *status.Fleet) {
	if f.Instances == nil {
		f.Instances = []status.Instance{}
	}
	for i := range f.Instances {
		if f.Instances[i].Backends == nil {
			f.Instances[i].Backends = []status.InstanceBackend{}
		}
	}
}

// actionScope reads the ?scope= of a drain, undrain or weight change. local
// says whether the change goes to the FleetController's *Local method: only
// for scope=local in a fleet. scope is where the change applies, for the log:
// "fleet" for the default in a fleet, "local" for scope=local or outside a
// fleet, where every change is local. Any other value is a 400.
func (s *Server) actionScope(c echo.Context) (local bool, scope string, err error) {
	switch q := c.QueryParam("scope"); q {
	case "", status.ScopeFleet:
	case status.ScopeLocal:
		local = true
	default:
		return false, "", httpError(http.StatusBadRequest, `bad scope parameter %s: want "scope=%s" (every instance, the default) or "scope=%s" (this instance only)`,
			quoteShort(q), status.ScopeFleet, status.ScopeLocal)
	}
	if _, ok := s.fleetView(); !ok {
		return false, status.ScopeLocal, nil
	}
	if local {
		return true, status.ScopeLocal, nil
	}
	return false, status.ScopeFleet, nil
}

// backendOp is an operator change to one backend in both scopes: the
// Controller's method (fleet-wide in a fleet) and the FleetController's one
// for scope=local.
type backendOp struct {
	name  string // for the log
	fleet func(c Controller, svc, backend, by string) (status.Backend, error)
	local func(c FleetController, svc, backend, by string) (status.Backend, error)
}

var (
	drainOp   = backendOp{"drain", Controller.Drain, FleetController.DrainLocal}
	undrainOp = backendOp{"undrain", Controller.Undrain, FleetController.UndrainLocal}
)
