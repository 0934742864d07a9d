package health

// State is what a backend may do: take new connections (Healthy), not take
// them because the checks say so (Unhealthy), not take them because an
// operator drains it (Draining), or not take them yet because its first
// check has not decided (Pending: a backend added while running).
type State int32

// The states, as the admin API spells them.
const (
	Healthy   State = iota // "healthy"
	Unhealthy              // "unhealthy"
	Draining               // "draining"
	Pending                // "pending"
)

func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	case Draining:
		return "draining"
	case Pending:
		return "pending"
	}
	return "unknown"
}

// verdictState is the state a backend has when it is not draining.
func verdictState(healthy bool) State {
	if healthy {
		return Healthy
	}
	return Unhealthy
}
