package fleet

import (
	"encoding/json"

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

// registration is the JSON value of an instance's registry key: the
// instance as the API shows it ("self" is always false in etcd).
type registration status.Instance

func parseRegistration(data []byte) (registration, error) {
	var r registration
	if err := json.Unmarshal(data, &r); err != nil {
		return r, err
	}
	return r, nil
}

func (r registration) instance(self bool) status.Instance {
	in := status.Instance(r)
	in.Self = self
	if in.Backends == nil {
		in.Backends = []status.InstanceBackend{}
	}
	return in
}
