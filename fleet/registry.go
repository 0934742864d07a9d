package fleet

import (
	"encoding/json"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// LeaseTTL is the registry lease's time to live in seconds: an instance that
// dies leaves the registry this long after its last keep-alive.
const LeaseTTL = 10

// Report is what this instance publishes about itself besides its identity.
type Report struct {
	ConfigDigest string
	Backends     []status.InstanceBackend
}

// registration is the JSON value of an instance's registry key.
type registration struct {
	ID              string                   `json:"id"`
	Admin           string                   `json:"admin"`
	Version         string                   `json:"version"`
	ConfigDigest    string                   `json:"config_digest"`
	AppliedRevision int64                    `json:"applied_revision"`
	Started         time.Time                `json:"started"`
	LastSeen        time.Time                `json:"last_seen"`
	Backends        []status.InstanceBackend `json:"backends"`
}

func parseRegistration(data []byte) (registration, error) {
	var r registration
	if err := json.Unmarshal(data, &r); err != nil {
		return r, err
	}
	return r, nil
}

func (r registration) instance(self bool) status.Instance {
	bs := r.Backends
	if bs == nil {
		bs = []status.InstanceBackend{}
	}
	return status.Instance{
		ID: r.ID, Admin: r.Admin, Version: r.Version, ConfigDigest: r.ConfigDigest,
		AppliedRevision: r.AppliedRevision, Started: r.Started, LastSeen: r.LastSeen,
		Self: self, Backends: bs,
	}
}
