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
