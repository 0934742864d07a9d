package l4

import (
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/health"
	"github.com/balancel4/balance-l4/resilience"
)

// This file joins a backend to the health and resilience packages: its
// state machine, passive checks, circuit breaker and active check target,
// and what their changes do to connections.

// newBackend returns a backend of s, subscribed to its own state changes:
// healthy, or pending (its first active check decides) if pending is set.
func (s *service) newBackend(bc config.Backend, hc config.HealthCheck, pending bool) *backend {
	b := &backend{svc: s, name: bc.Name, address: bc.Address, sockaddr: newSockaddr(bc.Address), now: s.r.now, conns: connList{which: backendList}}
	b.opWeight.Store(-1)
	b.status = health.NewStatus(health.StatusSettings{
		HealthyThreshold:   hc.HealthyThreshold,
		UnhealthyThreshold: hc.UnhealthyThreshold,
		Now:                s.r.now,
		Pending:            pending,
	})
	b.unsubscribe = b.status.Subscribe(b.onStateChange)
	return b
}

// configure applies the file's settings to b (under r.mu). A passive checker
// or breaker whose settings did not change is kept with its state.
func (b *backend) configure(bc config.Backend, sc *config.Service, prev *backendSettings) {
	b.fileWeight.Store(int32(bc.Weight))
	b.backup.Store(bc.Backup)
	b.maxConns.Store(int64(bc.MaxConnections))
	b.slowStart.Store(int64(sc.SlowStart))
	hc := sc.HealthCheck
	b.status.SetThresholds(hc.HealthyThreshold, hc.UnhealthyThreshold)
	if !hc.Enabled {
		b.status.Decide("active health checks turned off")
	}

	switch {
	case !hc.Passive.Enabled:
		b.passive.Store(nil)
	case prev == nil || prev.passive != hc.Passive || b.passive.Load() == nil:
		b.passive.Store(health.NewPassive(health.PassiveSettings{
			ConsecutiveFailures: hc.Passive.ConsecutiveFailures,
			ErrorRate:           hc.Passive.ErrorRateThreshold,
			MinRequests:         hc.Passive.MinRequests,
			Window:              hc.Passive.Window,
			Now:                 b.now,
		}))
	}
	cb := sc.Resilience.CircuitBreaker
	switch {
	case !cb.Enabled:
		b.breaker.Store(nil)
	case prev == nil || prev.breaker != cb || b.breaker.Load() == nil:
		b.breaker.Store(resilience.NewBreaker(resilience.BreakerSettings{
			MaxFailures:   cb.MaxFailures,
			OpenTimeout:   cb.Timeout,
			HalfOpenMax:   cb.MaxConcurrentRequests,
			Now:           b.now,
			OnStateChange: b.onBreakerChange,
		}))
	}
}

// backendSettings remembers what a backend's passive checker and breaker
// were built from, so a reload rebuilds them only when they change.
type backendSettings struct {
	passive config.PassiveChecks
	breaker config.CircuitBreaker
	check   *config.HealthCheck // nil when no active checks run
}

// onStateChange logs every state change and acts on it: slow start when the
// backend turns healthy, resets with close_on_unhealthy, and the drain timer.
func (b *backend) onStateChange(ch health.Change) {
	s := b.svc
	ev := s.r.log.Info()
	if ch.To == health.Unhealthy {
		ev = s.r.log.Warn()
	}
	ev.Str("service", s.name).Str("backend", b.name).Str("address", b.address).
		Str("from", ch.From.String()).Str("to", ch.To.String()).Str("reason", ch.Reason).
		Msg("backend state changed")

	if ch.From == health.Draining {
		b.stopDrainTimer()
	}
	switch ch.To {
	case health.Healthy:
		if p := b.passive.Load(); p != nil {
			p.Reset()
		}
		if ch.From == health.Unhealthy {
			// The checks just proved the backend reachable again: close its
			// breaker too rather than keep it out for the rest of the open
			// timeout (Envoy unejects on a passing active check likewise).
			b.breaker.Load().Reset()
		}
		b.startRamp()
	case health.Unhealthy:
		if s.cfg.Load().CloseOnUnhealthy {
			if n := b.abortAll(endUnhealthy); n > 0 {
				s.r.log.Warn().Str("service", s.name).Str("backend", b.name).Int("connections", n).
					Msg("reset the connections of an unhealthy backend (close_on_unhealthy)")
			}
		}
	}
}

// onBreakerChange records a circuit change in the backend's history.
func (b *backend) onBreakerChange(from, to resilience.BreakerState, reason string) {
	b.status.AddEvent(health.Event{
		Time:   b.now(),
		From:   "circuit_" + from.String(),
		To:     "circuit_" + to.String(),
		Reason: reason,
	})
	ev := b.svc.r.log.Info()
	if to == resilience.Open {
		ev = b.svc.r.log.Warn()
	}
	ev.Str("service", b.svc.name).Str("backend", b.name).Str("from", from.String()).Str("to", to.String()).
		Str("reason", reason).Msg("circuit breaker changed")
}

// recordPassive reports one connection attempt to passive checks. A trip
// marks the backend unhealthy; without active checks to bring it back, it
// comes back after the circuit breaker's timeout.
func (s *service) recordPassive(b *backend, ok bool) {
	p := b.passive.Load()
	if p == nil {
		return
	}
	trip, reason := p.Record(ok)
	if !trip || !b.status.Healthy() {
		return
	}
	b.status.MarkUnhealthy("passive: " + reason)
	cfg := s.cfg.Load()
	if cfg.HealthCheck.Enabled {
		return
	}
	after := cfg.Resilience.CircuitBreaker.Timeout
	if after <= 0 {
		after = resilience.DefaultOpenTimeout
	}
	b.mu.Lock()
	if b.reviveTimer != nil {
		b.reviveTimer.Stop()
	}
	b.reviveTimer = time.AfterFunc(after, func() {
		b.status.MarkHealthy("passive: circuit breaker timeout elapsed, no active checks")
	})
	b.mu.Unlock()
}

// startDrainTimer closes what is still open after d; 0 means never.
func (b *backend) startDrainTimer(d time.Duration) {
	if d <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drainTimer != nil {
		b.drainTimer.Stop()
	}
	b.drainTimer = time.AfterFunc(d, func() {
		if n := b.abortAll(endDrainTimeout); n > 0 {
			b.svc.r.log.Warn().Str("service", b.svc.name).Str("backend", b.name).Int("connections", n).
				Dur("drain_timeout_ms", d).Msg("drain timeout reached: closed the remaining connections")
		}
	})
}

func (b *backend) stopDrainTimer() {
	b.mu.Lock()
	if b.drainTimer != nil {
		b.drainTimer.Stop()
		b.drainTimer = nil
	}
	b.mu.Unlock()
}

// stopTimers stops the drain and revive timers (at shutdown).
func (b *backend) stopTimers() {
	b.mu.Lock()
	for _, t := range [2]*time.Timer{b.drainTimer, b.reviveTimer} {
		if t != nil {
			t.Stop()
		}
	}
	b.drainTimer, b.reviveTimer = nil, nil
	b.mu.Unlock()
}

// checkSettings translates the file's health check into the health package's.
func checkSettings(hc config.HealthCheck) health.CheckSettings {
	return health.CheckSettings{
		Type:           hc.Type,
		Path:           hc.Path,
		ExpectedStatus: hc.ExpectedStatus,
		ExpectBody:     hc.ExpectBody,
		Send:           hc.Send,
		Expect:         hc.Expect,
		Port:           hc.Port,
		TLSSkipVerify:  hc.TLSSkipVerify,
	}
}
