// Package status holds the read-only views of running services and backends that
// the data path produces and the admin server renders. It is plain data with the
// JSON shape of the admin API (SPEC §4), so neither side imports the other.
package status

import (
	"errors"
	"time"
)

// Service is a point-in-time view of one service.
type Service struct {
	Name                string    `json:"name"`
	Listen              string    `json:"listen"`
	Algorithm           string    `json:"algorithm"`
	ActiveConnections   int64     `json:"active_connections"`
	TotalConnections    int64     `json:"total_connections"`
	RejectedConnections int64     `json:"rejected_connections"`
	Retries             int64     `json:"retries"`
	AcceptErrors        int64     `json:"accept_errors"` // failed accepts (e.g. out of file descriptors)
	Rejected            Rejected  `json:"rejected"`
	Backends            []Backend `json:"backends"`
	// Discovery has one entry per discovery source; absent without any.
	Discovery []Discovery `json:"discovery,omitempty"`
}

// Discovery is the state of one discovery source of a service.
type Discovery struct {
	Type          string     `json:"type"` // dns | etcd
	Name          string     `json:"name"` // what is asked for; "" for etcd
	Backends      int        `json:"backends"`
	Errors        int64      `json:"errors"` // failed lookups (and invalid member values)
	LastError     string     `json:"last_error"`
	LastErrorTime *time.Time `json:"last_error_time"`
	LastSuccess   *time.Time `json:"last_success"` // the last good answer
}

// Rejected counts client connections closed without being served, by reason.
type Rejected struct {
	MaxConnections int64 `json:"max_connections"` // the service's max_connections was reached
	NoBackend      int64 `json:"no_backend"`      // no eligible backend
	ConnectFailed  int64 `json:"connect_failed"`  // every connect attempt failed
	ProxyHeader    int64 `json:"proxy_header"`    // accept_proxy: missing or bad PROXY header
	NoRoute        int64 `json:"no_route"`        // SNI routing: no service for the client's name (or no ClientHello in time)
	Denied         int64 `json:"denied"`          // the client's address is in deny, or outside a non-empty allow
	ClientLimit    int64 `json:"client_limit"`    // max_connections_per_client or connection_rate_per_client
}

// Reasons lists the rejection reasons with their metric label values.
func (r Rejected) Reasons() []struct {
	Reason string
	Count  int64
} {
	return []struct {
		Reason string
		Count  int64
	}{
		{"max_connections", r.MaxConnections},
		{"no_backend", r.NoBackend},
		{"connect_failed", r.ConnectFailed},
		{"proxy_header", r.ProxyHeader},
		{"no_route", r.NoRoute},
		{"denied", r.Denied},
		{"client_limit", r.ClientLimit},
	}
}

// Backend is a point-in-time view of one backend.
type Backend struct {
	Name                 string    `json:"name"`
	Address              string    `json:"address"`
	Weight               int       `json:"weight"`
	ConfiguredWeight     int       `json:"configured_weight"`
	EffectiveWeight      float64   `json:"effective_weight"` // weight after slow start
	Backup               bool      `json:"backup"`
	MaxConnections       int       `json:"max_connections"`
	State                string    `json:"state"`   // healthy | unhealthy | draining | pending
	Health               string    `json:"health"`  // healthy | unhealthy | pending (added while running, not checked yet)
	Circuit              string    `json:"circuit"` // closed | open | half_open
	Eligible             bool      `json:"eligible"`
	ActiveConnections    int64     `json:"active_connections"`
	TotalConnections     int64     `json:"total_connections"`
	FailedConnections    int64     `json:"failed_connections"`
	BytesIn              int64     `json:"bytes_in"`  // client -> backend
	BytesOut             int64     `json:"bytes_out"` // backend -> client
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
	HealthyThreshold     int       `json:"healthy_threshold"`
	UnhealthyThreshold   int       `json:"unhealthy_threshold"`
	ErrorRate            float64   `json:"error_rate"`
	LastCheck            *Check    `json:"last_check"`
	ChecksSuccess        int64     `json:"checks_success"`
	ChecksFailure        int64     `json:"checks_failure"`
	Drained              bool      `json:"drained"`
	Reason               string    `json:"reason"`
	LastChange           time.Time `json:"last_change"`
	Events               []Event   `json:"events"`
	// In a fleet only: the backend over every live instance, and whether a
	// change made with scope=local sets it apart from the fleet's state.
	Fleet    *BackendFleet `json:"fleet,omitempty"`
	Diverged *bool         `json:"diverged,omitempty"`
}

// Check is the result of the last active health check.
type Check struct {
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error"`
}

// Event is one state or circuit change.
type Event struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Reload says what a reload changed.
type Reload struct {
	ServicesAdded   []string `json:"services_added"`
	ServicesRemoved []string `json:"services_removed"`
	ServicesChanged []string `json:"services_changed"`
	BackendsAdded   []string `json:"backends_added"`   // "service/backend"
	BackendsRemoved []string `json:"backends_removed"` // "service/backend"
	BackendsChanged []string `json:"backends_changed"` // "service/backend"
	Summary         string   `json:"summary"`
}

// Errors that controllers return, so callers can map them to statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// ErrUnavailable marks a change refused because a dependency (the fleet's
// etcd) cannot be reached or did not confirm in time: the admin API answers 503.
var ErrUnavailable = errors.New("unavailable")

// Scope says where an operator change applies.
const (
	ScopeFleet = "fleet" // every instance of the fleet (the default in a fleet)
	ScopeLocal = "local" // this instance only
)

// Fleet is this instance's view of its fleet (SPEC §6), for GET /api/v1/fleet.
type Fleet struct {
	Name      string `json:"name"`
	Self      string `json:"self"` // this instance's id
	Connected bool   `json:"connected"`
	// Revision is the etcd revision this instance has seen and applied.
	Revision int64 `json:"revision"`
	// OperatorRevision is the revision of the newest operator change this
	// instance applied: an instance whose applied_revision is below it has
	// not seen that change yet.
	OperatorRevision int64 `json:"operator_revision"`
	// DisconnectedSince is when etcd became unreachable, while it is.
	DisconnectedSince *time.Time `json:"disconnected_since"`
	LastError         string     `json:"last_error"`
	LastSync          time.Time  `json:"last_sync"` // the last full read of the fleet state
	InvalidKeys       int64      `json:"invalid_keys"`
	Instances         []Instance `json:"instances"`
}

// Instance is one live instance of the fleet, as its registry entry says.
type Instance struct {
	ID              string            `json:"id"`
	Admin           string            `json:"admin"`
	Version         string            `json:"version"`
	ConfigDigest    string            `json:"config_digest"`
	AppliedRevision int64             `json:"applied_revision"`
	Started         time.Time         `json:"started"`
	LastSeen        time.Time         `json:"last_seen"`
	Self            bool              `json:"self"`
	Backends        []InstanceBackend `json:"backends"`
}

// InstanceBackend is one backend as an instance last published it.
type InstanceBackend struct {
	Service           string `json:"service"`
	Backend           string `json:"backend"`
	State             string `json:"state"`
	ActiveConnections int64  `json:"active_connections"`
}

// BackendFleet sums one backend over the fleet's live instances.
type BackendFleet struct {
	Instances         int   `json:"instances"` // live instances that have the backend
	Draining          int   `json:"draining"`
	ActiveConnections int64 `json:"active_connections"`
	// Drained is true once the backend is draining on every live instance
	// and has no connection left on any.
	Drained bool `json:"drained"`
}
