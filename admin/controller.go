package admin

import "github.com/balancel4/balance-l4/status"

// Controller is everything the admin server may read or do. The application
// wires the running data path behind it; handler tests use a fake.
//
// Errors wrap status.ErrNotFound for an unknown service or backend (404) and
// status.ErrInvalid for bad input (400).
type Controller interface {
	Services() []status.Service
	Service(name string) (status.Service, error)
	Backend(service, backend string) (status.Backend, error)

	// Drain, Undrain, Disconnect and SetWeight are idempotent. by says who
	// asked (e.g. "api 127.0.0.1:5000", "dashboard"), for the log and events.
	Drain(service, backend, by string) (status.Backend, error)
	Undrain(service, backend, by string) (status.Backend, error)
	Disconnect(service, backend, by string) (closed int, err error)
	SetWeight(service, backend string, weight int, by string) (status.Backend, error)

	// Reload re-reads the configuration file. On a validation error nothing
	// changes and the error lists every problem (one per line).
	Reload(by string) (status.Reload, error)
}

// FleetController is implemented by a controller that can be part of a fleet
// (SPEC §6). The admin server uses it when the controller has it.
type FleetController interface {
	// Fleet returns this instance's view of its fleet; ok is false when the
	// instance is not part of one (GET /api/v1/fleet answers 404).
	Fleet() (f status.Fleet, ok bool)

	// DrainLocal, UndrainLocal and SetWeightLocal act on this instance alone
	// (?scope=local): they work while etcd is unreachable, are kept in the
	// state file, and mark the backend diverged until the next fleet-wide
	// change to it. Errors wrapping status.ErrUnavailable answer 503.
	DrainLocal(service, backend, by string) (status.Backend, error)
	UndrainLocal(service, backend, by string) (status.Backend, error)
	SetWeightLocal(service, backend string, weight int, by string) (status.Backend, error)
}
