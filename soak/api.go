package soak

import (
	"fmt"
	"time"
)

// The admin API's objects as SPEC §4 names their fields: the soak reads them
// from the outside, as an operator's script would.
type apiService struct {
	Name              string       `json:"name"`
	ActiveConnections int64        `json:"active_connections"`
	TotalConnections  int64        `json:"total_connections"`
	Rejected          int64        `json:"rejected_connections"`
	Backends          []apiBackend `json:"backends"`
}

type apiBackend struct {
	Name                string     `json:"name"`
	Address             string     `json:"address"`
	Weight              int        `json:"weight"`
	ConfiguredWeight    int        `json:"configured_weight"`
	State               string     `json:"state"`
	Health              string     `json:"health"`
	Circuit             string     `json:"circuit"`
	Eligible            bool       `json:"eligible"`
	ActiveConnections   int64      `json:"active_connections"`
	TotalConnections    int64      `json:"total_connections"`
	FailedConnections   int64      `json:"failed_connections"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Reason              string     `json:"reason"`
	Events              []apiEvent `json:"events"`
	Diverged            *bool      `json:"diverged"` // in a fleet: changed with scope=local
}

// apiFleet is GET /api/v1/fleet (SPEC §6).
type apiFleet struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	Revision  int64  `json:"revision"`
	LastError string `json:"last_error"`
	Instances []struct {
		ID              string `json:"id"`
		AppliedRevision int64  `json:"applied_revision"`
	} `json:"instances"`
}

type apiEvent struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// idle reports whether svc has no connection left and every backend is
// healthy, eligible and closed-circuit; else it says what is not.
func (s apiService) idle(wantBackends int) (bool, string) {
	if s.ActiveConnections != 0 {
		return false, fmt.Sprintf("%d active connections", s.ActiveConnections)
	}
	if len(s.Backends) != wantBackends {
		return false, fmt.Sprintf("%d backends, want %d", len(s.Backends), wantBackends)
	}
	for _, b := range s.Backends {
		if b.State != "healthy" || !b.Eligible || b.Circuit != "closed" || b.ActiveConnections != 0 {
			return false, fmt.Sprintf("backend %s: state %s, eligible %v, circuit %s, %d active, reason %q",
				b.Name, b.State, b.Eligible, b.Circuit, b.ActiveConnections, b.Reason)
		}
	}
	return true, ""
}
