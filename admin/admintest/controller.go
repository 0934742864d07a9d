// Package admintest provides an in-memory admin.Controller that behaves like the
// running data path as SPEC §3 and §4 describe it: drain is sticky, eligibility
// and its reason follow from health, circuit, weight and limits, state changes
// are recorded as events with the time and who asked. Tests and demos drive it
// through Update and see exactly what the admin server shows.
//
// Typical use:
//
//	c := admintest.New(clock.Now)
//	c.AddService(status.Service{Name: "pg", Listen: "127.0.0.1:6432",
//		Backends: []status.Backend{{Name: "pg1", Address: "10.0.0.11:5432", Weight: 1}}})
//	c.Update("pg", "pg1", "3 failed checks", func(b *status.Backend) { b.Health = "unhealthy" })
//
// It is also an admin.FleetController, outside a fleet until SetFleet puts it
// in one (see fleet.go).
package admintest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// maxEvents is how many events a backend keeps, as SPEC §4 says.
const maxEvents = 20

// Call records one state-changing call made through the Controller interface.
type Call struct {
	Method  string // Drain | Undrain | Disconnect | SetWeight | Reload | DrainLocal | UndrainLocal | SetWeightLocal
	Service string
	Backend string
	Weight  int // SetWeight only
	By      string
}

// Controller is a concurrency-safe fake of the running balancer. The zero value
// is not usable; call New.
type Controller struct {
	now func() time.Time

	mu       sync.Mutex
	services []*service
	reload   func(by string) (status.Reload, error)
	calls    []Call
	fleet    *status.Fleet // nil: not part of a fleet
}

type service struct {
	view     status.Service // Backends is always nil here
	backends []*backend
}

type backend struct {
	view     status.Backend
	draining bool
	diverged bool // changed with scope=local since the last fleet-wide change
}

// New returns an empty controller. now stamps events and state changes; nil
// means time.Now.
func New(now func() time.Time) *Controller {
	if now == nil {
		now = time.Now
	}
	return &Controller{now: now}
}

// AddService adds a service with its backends. Empty fields get the defaults
// of a fresh start: state and health "healthy", circuit "closed", thresholds
// 2 and 3, configured weight = weight. A backend whose State is "draining" starts
// drained by the operator.
func (c *Controller) AddService(s status.Service) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.findService(s.Name) != nil {
		return fmt.Errorf("adding service %q: %w: duplicate name", s.Name, status.ErrInvalid)
	}
	svc := &service{view: s}
	svc.view.Backends = nil
	for _, b := range s.Backends {
		if svc.find(b.Name) != nil {
			return fmt.Errorf("adding backend %s/%s: %w: duplicate name", s.Name, b.Name, status.ErrInvalid)
		}
		nb := &backend{view: b, draining: b.State == "draining"}
		v := &nb.view
		v.Events = slices.Clone(b.Events)
		if b.LastCheck != nil {
			lc := *b.LastCheck
			v.LastCheck = &lc
		}
		if v.Health == "" {
			v.Health = "healthy"
		}
		if v.Circuit == "" {
			v.Circuit = "closed"
		}
		if v.HealthyThreshold == 0 {
			v.HealthyThreshold = 2
		}
		if v.UnhealthyThreshold == 0 {
			v.UnhealthyThreshold = 3
		}
		if v.ConfiguredWeight == 0 && v.Weight > 0 {
			v.ConfiguredWeight = v.Weight
		}
		if v.EffectiveWeight == 0 {
			v.EffectiveWeight = float64(v.Weight)
		}
		if v.LastChange.IsZero() {
			v.LastChange = c.now()
		}
		nb.derive()
		svc.backends = append(svc.backends, nb)
	}
	c.services = append(c.services, svc)
	return nil
}

// RemoveService forgets a service, as a reload that drops it would.
func (c *Controller) RemoveService(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.services, func(s *service) bool { return s.view.Name == name })
	if i < 0 {
		return fmt.Errorf("removing service %q: %w", name, status.ErrNotFound)
	}
	c.services = slices.Delete(c.services, i, i+1)
	return nil
}

// RemoveBackend forgets a backend, as a reload that drops it would.
func (c *Controller) RemoveBackend(svcName, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.findService(svcName)
	if s == nil {
		return fmt.Errorf("removing backend %s/%s: %w: unknown service", svcName, name, status.ErrNotFound)
	}
	i := slices.IndexFunc(s.backends, func(b *backend) bool { return b.view.Name == name })
	if i < 0 {
		return fmt.Errorf("removing backend %s/%s: %w: unknown backend", svcName, name, status.ErrNotFound)
	}
	s.backends = slices.Delete(s.backends, i, i+1)
	return nil
}

// Update changes a backend's raw facts (health, circuit, counters, last check,
// ...) the way the data path would; the derived fields (state, eligible, reason,
// drained) are recomputed afterwards, and a change of state or circuit is
// recorded as an event with reason. f must not keep the pointer.
func (c *Controller) Update(svcName, name, reason string, f func(b *status.Backend)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.find(svcName, name)
	if err != nil {
		return fmt.Errorf("updating backend: %w", err)
	}
	before := b.view
	f(&b.view)
	b.settle(before, reason, c.now())
	return nil
}

// UpdateService changes a service's own counters (active, total, rejected,
// retries). Its Backends field is ignored; use Update for those.
func (c *Controller) UpdateService(name string, f func(s *status.Service)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.findService(name)
	if s == nil {
		return fmt.Errorf("updating service %q: %w", name, status.ErrNotFound)
	}
	f(&s.view)
	s.view.Backends = nil
	return nil
}

// SetReload sets what Reload does; by default it succeeds and changes nothing.
func (c *Controller) SetReload(f func(by string) (status.Reload, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reload = f
}

// Calls returns the state-changing calls made so far, oldest first.
func (c *Controller) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// Services implements admin.Controller.
func (c *Controller) Services() []status.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]status.Service, 0, len(c.services))
	for _, s := range c.services {
		out = append(out, c.serviceView(s))
	}
	return out
}

// Service implements admin.Controller.
func (c *Controller) Service(name string) (status.Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.findService(name)
	if s == nil {
		return status.Service{}, fmt.Errorf("service %q: %w", name, status.ErrNotFound)
	}
	return c.serviceView(s), nil
}

// Backend implements admin.Controller.
func (c *Controller) Backend(svcName, name string) (status.Backend, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.find(svcName, name)
	if err != nil {
		return status.Backend{}, err
	}
	return c.backendView(svcName, b), nil
}

// Drain implements admin.Controller. In a fleet it is fleet-wide: it fails
// with status.ErrUnavailable while the fleet is not Connected.
func (c *Controller) Drain(svcName, name, by string) (status.Backend, error) {
	return c.operate(Call{Method: "Drain", Service: svcName, Backend: name, By: by}, drain)
}

// Undrain implements admin.Controller; in a fleet, as Drain.
func (c *Controller) Undrain(svcName, name, by string) (status.Backend, error) {
	return c.operate(Call{Method: "Undrain", Service: svcName, Backend: name, By: by}, undrain)
}

// SetWeight implements admin.Controller. The operator's weight replaces the
// current one; ConfiguredWeight keeps the file's. In a fleet, as Drain.
func (c *Controller) SetWeight(svcName, name string, weight int, by string) (status.Backend, error) {
	if err := checkWeight(svcName, name, weight); err != nil {
		return status.Backend{}, err
	}
	return c.operate(Call{Method: "SetWeight", Service: svcName, Backend: name, Weight: weight, By: by}, setWeight(weight))
}

func drain(b *backend)   { b.draining = true }
func undrain(b *backend) { b.draining = false }

func setWeight(weight int) func(b *backend) {
	return func(b *backend) {
		b.view.Weight = weight
		b.view.EffectiveWeight = float64(weight)
	}
}

func checkWeight(svcName, name string, weight int) error {
	if weight < 0 || weight > 256 {
		return fmt.Errorf("setting weight of %s/%s: %w: weight %d outside 0..256", svcName, name, status.ErrInvalid, weight)
	}
	return nil
}

// Disconnect implements admin.Controller: every active connection of the
// backend is closed and counted.
func (c *Controller) Disconnect(svcName, name, by string) (int, error) {
	var closed int64
	_, err := c.operate(Call{Method: "Disconnect", Service: svcName, Backend: name, By: by}, func(b *backend) {
		closed = b.view.ActiveConnections
		b.view.ActiveConnections = 0
	})
	return int(closed), err
}

// Reload implements admin.Controller.
func (c *Controller) Reload(by string) (status.Reload, error) {
	c.mu.Lock()
	c.calls = append(c.calls, Call{Method: "Reload", By: by})
	f := c.reload
	c.mu.Unlock()
	if f == nil {
		return status.Reload{Summary: "no changes"}, nil
	}
	return f(by)
}

// operate makes an operator change. In a fleet, Drain, Undrain and SetWeight
// are fleet-wide (refused while the fleet store is unreachable, committed as
// a new revision otherwise) and the *Local methods set the backend apart.
func (c *Controller) operate(call Call, f func(b *backend)) (status.Backend, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.find(call.Service, call.Backend)
	if err != nil {
		return status.Backend{}, err
	}
	fleetWide := false
	if c.fleet != nil {
		switch call.Method {
		case "Drain", "Undrain", "SetWeight":
			if err := c.fleetUnavailable(); err != nil {
				return status.Backend{}, err
			}
			fleetWide, b.diverged = true, false
		case "DrainLocal", "UndrainLocal", "SetWeightLocal":
			b.diverged = true
		}
	}
	c.calls = append(c.calls, call)
	before := b.view
	f(b)
	b.settle(before, "by "+call.By, c.now())
	if fleetWide {
		c.commit(call.Service, b)
	}
	return c.backendView(call.Service, b), nil
}

func (c *Controller) findService(name string) *service {
	for _, s := range c.services {
		if s.view.Name == name {
			return s
		}
	}
	return nil
}

func (c *Controller) find(svcName, name string) (*backend, error) {
	s := c.findService(svcName)
	if s == nil {
		return nil, fmt.Errorf("service %q: %w", svcName, status.ErrNotFound)
	}
	b := s.find(name)
	if b == nil {
		return nil, fmt.Errorf("backend %q of service %q: %w", name, svcName, status.ErrNotFound)
	}
	return b, nil
}

func (s *service) find(name string) *backend {
	for _, b := range s.backends {
		if b.view.Name == name {
			return b
		}
	}
	return nil
}

func (c *Controller) serviceView(s *service) status.Service {
	v := s.view
	v.Backends = make([]status.Backend, 0, len(s.backends))
	for _, b := range s.backends {
		v.Backends = append(v.Backends, c.backendView(s.view.Name, b))
	}
	return v
}

// backendView is the backend's snapshot with, in a fleet, its fleet and
// diverged fields.
func (c *Controller) backendView(svcName string, b *backend) status.Backend {
	v := b.snapshot()
	if c.fleet != nil {
		v.Fleet = c.backendFleet(svcName, b)
		d := b.diverged
		v.Diverged = &d
	}
	return v
}

// snapshot copies the view so the caller never shares memory with the fake.
func (b *backend) snapshot() status.Backend {
	v := b.view
	v.Events = slices.Clone(b.view.Events)
	if v.Events == nil {
		v.Events = []status.Event{}
	}
	if b.view.LastCheck != nil {
		lc := *b.view.LastCheck
		v.LastCheck = &lc
	}
	return v
}

// settle recomputes the derived fields and records state and circuit changes.
func (b *backend) settle(before status.Backend, reason string, now time.Time) {
	b.derive()
	if before.State != b.view.State {
		b.event(now, before.State, b.view.State, reason)
	}
	if before.Circuit != b.view.Circuit {
		b.event(now, "circuit "+before.Circuit, "circuit "+b.view.Circuit, reason)
	}
}

func (b *backend) event(now time.Time, from, to, reason string) {
	e := status.Event{Time: now, From: from, To: to, Reason: reason}
	b.view.Events = slices.Insert(b.view.Events, 0, e)
	if len(b.view.Events) > maxEvents {
		b.view.Events = b.view.Events[:maxEvents]
	}
	b.view.LastChange = now
}

// derive applies the eligibility rules, with the data path's reasons.
func (b *backend) derive() {
	v := &b.view
	v.State = v.Health
	if b.draining {
		v.State = "draining"
	}
	v.Drained = b.draining && v.ActiveConnections == 0
	v.Reason = b.reason()
	v.Eligible = v.Reason == ""
}

func (b *backend) reason() string {
	v := &b.view
	switch {
	case b.draining:
		return "draining"
	case v.Health == "pending":
		return "waiting for its first health check"
	case v.Health != "healthy":
		return "health checks failing"
	case v.Circuit == "open":
		return "circuit breaker open"
	case v.Weight == 0:
		return "weight is 0"
	case v.MaxConnections > 0 && v.ActiveConnections >= int64(v.MaxConnections):
		return fmt.Sprintf("at max_connections (%d)", v.MaxConnections)
	}
	return ""
}
