package l4

import (
	"fmt"

	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/status"
)

// Services returns every service with its backends, in configuration order.
func (r *Runtime) Services() []status.Service {
	r.mu.Lock()
	order := append([]*service(nil), r.order...)
	r.mu.Unlock()
	out := make([]status.Service, 0, len(order))
	for _, s := range order {
		out = append(out, s.view())
	}
	return out
}

// Service returns one service; the error wraps status.ErrNotFound.
func (r *Runtime) Service(name string) (status.Service, error) {
	s := r.service(name)
	if s == nil {
		return status.Service{}, fmt.Errorf("service %q: %w", name, status.ErrNotFound)
	}
	return s.view(), nil
}

// Backend returns one backend; the error wraps status.ErrNotFound.
func (r *Runtime) Backend(service, backend string) (status.Backend, error) {
	s, b, err := r.lookup(service, backend)
	if err != nil {
		return status.Backend{}, err
	}
	return s.backendView(b), nil
}

func (s *service) view() status.Service {
	cfg := s.cfg.Load()
	set := s.set.Load()
	v := status.Service{
		Name:              s.name,
		Listen:            cfg.Listen,
		Algorithm:         cfg.Algorithm,
		ActiveConnections: s.active.Load(),
		TotalConnections:  s.total.Load(),
		Retries:           s.retries.Load(),
		AcceptErrors:      s.acceptErrors.Load(),
		Rejected: status.Rejected{
			MaxConnections: s.rejected.maxConns.Load(),
			NoBackend:      s.rejected.noBackend.Load(),
			ConnectFailed:  s.rejected.connectFailed.Load(),
			ProxyHeader:    s.rejected.proxyHeader.Load(),
			NoRoute:        s.rejected.noRoute.Load(),
			Denied:         s.rejected.denied.Load(),
			ClientLimit:    s.rejected.clientLimit.Load(),
		},
		Backends: make([]status.Backend, 0, len(set.all)),
	}
	if a := s.boundAddr.Load(); a != nil {
		v.Listen = *a
	}
	for _, rc := range v.Rejected.Reasons() {
		v.RejectedConnections += rc.Count
	}
	for _, b := range set.all {
		v.Backends = append(v.Backends, s.backendView(b))
	}
	return v
}

func (s *service) backendView(b *backend) status.Backend {
	snap := b.status.Snapshot()
	active := b.active.Load()
	v := status.Backend{
		Name:                 b.name,
		Address:              b.address,
		Weight:               b.weight(),
		ConfiguredWeight:     int(b.fileWeight.Load()),
		EffectiveWeight:      b.EffectiveWeight(),
		Backup:               b.backup.Load(),
		MaxConnections:       int(b.maxConns.Load()),
		State:                snap.State.String(),
		Health:               health.Unhealthy.String(),
		Circuit:              "closed",
		Eligible:             b.Eligible(),
		ActiveConnections:    active,
		TotalConnections:     b.total.Load(),
		FailedConnections:    b.failed.Load(),
		BytesIn:              b.bytesIn.Load(),
		BytesOut:             b.bytesOut.Load(),
		ConsecutiveSuccesses: snap.ConsecutiveSuccesses,
		ConsecutiveFailures:  snap.ConsecutiveFailures,
		HealthyThreshold:     snap.HealthyThreshold,
		UnhealthyThreshold:   snap.UnhealthyThreshold,
		ChecksSuccess:        snap.ChecksSuccess,
		ChecksFailure:        snap.ChecksFailure,
		Drained:              snap.State == health.Draining && active == 0,
		Reason:               b.reason(),
		LastChange:           snap.LastChange,
		Events:               make([]status.Event, 0, len(snap.Events)),
	}
	switch {
	case snap.Pending:
		v.Health = health.Pending.String()
	case snap.Healthy:
		v.Health = health.Healthy.String()
	}
	if br := b.breaker.Load(); br != nil {
		v.Circuit = br.State().String()
	}
	if p := b.passive.Load(); p != nil {
		v.ErrorRate = p.ErrorRate()
	}
	if lc := snap.LastCheck; lc != nil {
		v.LastCheck = &status.Check{
			Time:       lc.Time,
			OK:         lc.OK,
			DurationMS: float64(lc.Duration.Microseconds()) / 1000,
			Error:      lc.Err,
		}
	}
	for _, e := range snap.Events {
		v.Events = append(v.Events, status.Event{Time: e.Time, From: e.From, To: e.To, Reason: e.Reason})
	}
	return v
}
