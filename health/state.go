package health

// State is what a backend may do: take new connections (Healthy), not take
// them because the checks say so (Unhealthy), or not take them because an
// operator drains it (Draining).
type State int32

// The states, as the admin API spells them.
const (
	Healthy   State = iota // "healthy"
	Unhealthy              // "unhealthy"
	Draining               // "draining"
)

func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	case Draining:
		return "draining"
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
