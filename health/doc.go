// Package health decides whether a backend should take new connections.
//
// Two kinds of evidence feed one verdict per backend. Active checks probe the
// backend on a schedule (a TCP connect, an HTTP request, or a database
// handshake that needs no credentials) and move the verdict only after a run
// of agreeing results, so one lost packet does not flap a backend. Passive
// checks watch real connection attempts and mark a backend unhealthy at once
// when they fail in a row or too often, long before the next probe would.
// Draining is the operator's decision and sits on top of the verdict: it is
// sticky, and the verdict keeps changing underneath it.
//
// The package knows nothing of splicing, configuration files or HTTP
// handlers: the data path translates its configuration into the small
// settings types here and reads State on every pick, which takes no lock.
//
// Typical use:
//
//	st := health.NewStatus(health.StatusSettings{HealthyThreshold: 2, UnhealthyThreshold: 3})
//	st.Subscribe(func(c health.Change) { rebuildEligible(); log(c) })
//	chk, err := health.NewChecker(health.CheckSettings{Type: "postgres"})
//	if err != nil { ... }
//	mon := health.NewMonitor(logger)
//	defer mon.Close()
//	mon.Add(health.Target{ID: "db/pg1", Address: "10.0.0.11:5432", Checker: chk,
//		Interval: 10 * time.Second, Timeout: 3 * time.Second, Status: st})
//
//	pas := health.NewPassive(health.PassiveSettings{ConsecutiveFailures: 5, ErrorRate: 0.5, MinRequests: 10})
//	if trip, why := pas.Record(connectErr == nil); trip {
//		st.MarkUnhealthy("passive: " + why)
//	}
//	if st.State() == health.Healthy { ... pick it ... }
package health
