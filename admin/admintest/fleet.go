package admintest

import (
	"errors"
	"slices"

	"github.com/balancel4/balance-l4/status"
)

// The fake as an admin.FleetController (SPEC §6). It is outside a fleet until
// SetFleet puts it in one, so existing users see no difference: Fleet says
// ok=false and backends have no fleet fields.
//
// In a fleet:
//   - Drain, Undrain and SetWeight are fleet-wide. While the fleet is not
//     Connected they change nothing and fail with an error wrapping
//     status.ErrUnavailable ("fleet store unreachable: " + LastError), as an
//     instance that knows etcd is unreachable does. Otherwise they commit a new
//     Revision (and OperatorRevision), which this instance and every instance
//     that had applied the previous operator change apply at once (instances
//     behind stay behind); those also publish the backend draining or not.
//   - DrainLocal, UndrainLocal and SetWeightLocal change this instance only and
//     mark the backend diverged until the next fleet-wide change to it.
//   - Every backend has Fleet, summed over this instance (its live state) and
//     the other instances of the registry that published the backend, and
//     Diverged.

// ErrNotInFleet is UpdateFleet's error outside a fleet.
var ErrNotInFleet = errors.New("admintest: the controller is not part of a fleet (call SetFleet first)")

// SetFleet puts the controller in a fleet with f as its view (copied), or
// takes it out of its fleet with nil. The instance whose Self is true or whose
// ID is f.Self is this one.
func (c *Controller) SetFleet(f *status.Fleet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f == nil {
		c.fleet = nil
		return
	}
	cp := copyFleet(*f)
	c.fleet = &cp
}

// UpdateFleet changes the fleet view in place (connected, revision, the
// registry, ...). f must not keep the pointer.
func (c *Controller) UpdateFleet(f func(f *status.Fleet)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fleet == nil {
		return ErrNotInFleet
	}
	f(c.fleet)
	cp := copyFleet(*c.fleet) // f may have left slices shared with its caller
	c.fleet = &cp
	return nil
}

// Fleet implements admin.FleetController.
func (c *Controller) Fleet() (status.Fleet, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fleet == nil {
		return status.Fleet{}, false
	}
	return copyFleet(*c.fleet), true
}

// DrainLocal implements admin.FleetController.
func (c *Controller) DrainLocal(svcName, name, by string) (status.Backend, error) {
	return c.operate(Call{Method: "DrainLocal", Service: svcName, Backend: name, By: by}, drain)
}

// UndrainLocal implements admin.FleetController.
func (c *Controller) UndrainLocal(svcName, name, by string) (status.Backend, error) {
	return c.operate(Call{Method: "UndrainLocal", Service: svcName, Backend: name, By: by}, undrain)
}

// SetWeightLocal implements admin.FleetController.
func (c *Controller) SetWeightLocal(svcName, name string, weight int, by string) (status.Backend, error) {
	if err := checkWeight(svcName, name, weight); err != nil {
		return status.Backend{}, err
	}
	return c.operate(Call{Method: "SetWeightLocal", Service: svcName, Backend: name, Weight: weight, By: by}, setWeight(weight))
}

// unavailableError is a fleet-wide change refused while etcd is unreachable.
type unavailableError struct{ msg string }

func (e unavailableError) Error() string { return e.msg }
func (e unavailableError) Unwrap() error { return status.ErrUnavailable }

// fleetUnavailable is the error of a fleet-wide change while the fleet is not
// connected, else nil. c.mu is held and c.fleet set.
func (c *Controller) fleetUnavailable() error {
	if c.fleet.Connected {
		return nil
	}
	msg := "fleet store unreachable"
	if c.fleet.LastError != "" {
		msg += ": " + c.fleet.LastError
	}
	return unavailableError{msg}
}

// commit records a fleet-wide change to b as a new revision, which becomes
// the OperatorRevision. This instance applies it, and so does every other
// instance that had applied the previous operator change; those also publish
// the backend draining or not. Instances behind stay behind. c.mu is held and
// c.fleet set.
func (c *Controller) commit(svcName string, b *backend) {
	f := c.fleet
	prev := f.OperatorRevision
	// etcd's revision is the cluster's: past every one any instance has seen.
	rev := max(f.Revision, f.OperatorRevision)
	for _, in := range f.Instances {
		rev = max(rev, in.AppliedRevision)
	}
	f.Revision = rev + 1
	f.OperatorRevision = f.Revision
	state := "healthy"
	if b.draining {
		state = "draining"
	}
	for i := range f.Instances {
		in := &f.Instances[i]
		if isSelf(f, in) {
			in.AppliedRevision = f.Revision
			continue
		}
		if in.AppliedRevision < prev {
			continue
		}
		in.AppliedRevision = f.Revision
		for j := range in.Backends {
			ib := &in.Backends[j]
			if ib.Service == svcName && ib.Backend == b.view.Name && (ib.State == "draining") != b.draining {
				ib.State = state
			}
		}
	}
}

// backendFleet sums b over this instance and the other instances that
// published it. c.mu is held and c.fleet set.
func (c *Controller) backendFleet(svcName string, b *backend) *status.BackendFleet {
	bf := &status.BackendFleet{Instances: 1, ActiveConnections: b.view.ActiveConnections}
	if b.view.State == "draining" {
		bf.Draining++
	}
	for i := range c.fleet.Instances {
		in := &c.fleet.Instances[i]
		if isSelf(c.fleet, in) {
			continue
		}
		for _, ib := range in.Backends {
			if ib.Service == svcName && ib.Backend == b.view.Name {
				bf.Instances++
				if ib.State == "draining" {
					bf.Draining++
				}
				bf.ActiveConnections += ib.ActiveConnections
				break
			}
		}
	}
	bf.Drained = bf.Draining == bf.Instances && bf.ActiveConnections == 0
	return bf
}

func isSelf(f *status.Fleet, in *status.Instance) bool {
	return in.Self || (f.Self != "" && in.ID == f.Self)
}

// copyFleet copies f so that no slice or pointer is shared.
func copyFleet(f status.Fleet) status.Fleet {
	if f.DisconnectedSince != nil {
		t := *f.DisconnectedSince
		f.DisconnectedSince = &t
	}
	f.Instances = slices.Clone(f.Instances)
	for i := range f.Instances {
		f.Instances[i].Backends = slices.Clone(f.Instances[i].Backends)
	}
	return f
}
