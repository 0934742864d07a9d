package admin

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
)

// newRegistry returns a registry (not the global default, so several servers
// can live in one process) with the balancer's collector and the Go and
// process collectors. fleet is ctrl as a FleetController, or nil.
func newRegistry(ctrl Controller, fleet FleetController) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(ctrl, fleet),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// collector turns Controller.Services into SPEC §5's metrics at scrape time,
// so the data path keeps plain atomic counters and knows nothing of
// Prometheus. Service-level gauges and counters have their own names
// (balance_service_*) instead of a backend="" label. The balance_fleet_*
// series (SPEC §6) exist only while the instance is part of a fleet.
type collector struct {
	ctrl  Controller
	fleet FleetController // nil when ctrl is none

	fleetConnected, fleetInstances, fleetRevision, fleetLastSync, fleetInvalidKeys *prometheus.Desc

	connections, active, failures, bytes             *prometheus.Desc
	eligible, state, checks, circuit, weight         *prometheus.Desc
	svcActive, svcConnections, retries, acceptErrors *prometheus.Desc
	discoveryErrors                                  *prometheus.Desc
	rejected                                         *prometheus.Desc
}

var (
	backendLabels = []string{"service", "backend"}
	serviceLabels = []string{"service"}
	// backendStates are the values of balance_backend_state's state label.
	backendStates = []string{"healthy", "unhealthy", "draining", "pending"}
)

func newCollector(ctrl Controller, fleet FleetController) *collector {
	d := prometheus.NewDesc
	return &collector{
		ctrl:        ctrl,
		fleet:       fleet,
		connections: d("balance_connections_total", "Client connections proxied to the backend.", backendLabels, nil),
		active:      d("balance_active_connections", "Established connections to the backend now.", backendLabels, nil),
		failures:    d("balance_connect_failures_total", "Failed connection attempts to the backend.", backendLabels, nil),
		bytes: d("balance_bytes_total", "Bytes copied: in = client to backend, out = backend to client.",
			slices.Concat(backendLabels, []string{"direction"}), nil),
		eligible: d("balance_backend_eligible", "1 if the backend takes new connections, else 0.", backendLabels, nil),
		state: d("balance_backend_state", "1 for the backend's current state, 0 for the others.",
			slices.Concat(backendLabels, []string{"state"}), nil),
		checks: d("balance_health_checks_total", "Active health checks by result.",
			slices.Concat(backendLabels, []string{"result"}), nil),
		circuit: d("balance_circuit_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.", backendLabels, nil),
		weight:  d("balance_backend_weight", "The backend's current weight (the operator's when set).", backendLabels, nil),
		svcActive: d("balance_service_active_connections", "Established client connections of the service now.",
			serviceLabels, nil),
		svcConnections: d("balance_service_connections_total", "Client connections accepted by the service.",
			serviceLabels, nil),
		retries:      d("balance_retries_total", "Connect attempts beyond the first.", serviceLabels, nil),
		acceptErrors: d("balance_accept_errors_total", "Failed accepts, e.g. out of file descriptors; the accept loop backs off and keeps serving.", serviceLabels, nil),
		discoveryErrors: d("balance_discovery_errors_total", "Discovery lookups that gave no answer to trust (the backends found before stay), and invalid member values.",
			[]string{"service", "type"}, nil),
		rejected: d("balance_rejected_connections_total", "Client connections closed without being served, by reason.",
			slices.Concat(serviceLabels, []string{"reason"}), nil),
		fleetConnected: d("balance_fleet_connected", "1 while the fleet store (etcd) is reachable, 0 while this instance serves with the last applied state.",
			nil, nil),
		fleetInstances: d("balance_fleet_instances", "Live instances of the fleet that this instance sees in the registry, itself included.",
			nil, nil),
		fleetRevision: d("balance_fleet_applied_revision", "The etcd revision of the fleet's operator state that this instance has applied.",
			nil, nil),
		fleetLastSync: d("balance_fleet_last_sync_timestamp_seconds", "Unix time of this instance's last full read of the fleet state from etcd; 0 before the first.",
			nil, nil),
		fleetInvalidKeys: d("balance_fleet_invalid_keys_total", "Operator keys in etcd ignored because their value is not valid JSON of the documented shape.",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connections, c.active, c.failures, c.bytes, c.eligible, c.state,
		c.checks, c.circuit, c.weight, c.svcActive, c.svcConnections, c.retries, c.acceptErrors, c.rejected, c.discoveryErrors} {
		ch <- d
	}
	if c.fleet != nil {
		for _, d := range []*prometheus.Desc{c.fleetConnected, c.fleetInstances, c.fleetRevision, c.fleetLastSync, c.fleetInvalidKeys} {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range c.ctrl.Services() {
		gauge(c.svcActive, float64(s.ActiveConnections), s.Name)
		counter(c.svcConnections, s.TotalConnections, s.Name)
		counter(c.retries, s.Retries, s.Name)
		counter(c.acceptErrors, s.AcceptErrors, s.Name)
		for _, r := range s.Rejected.Reasons() {
			counter(c.rejected, r.Count, s.Name, r.Reason)
		}
		errs := map[string]int64{} // by type: a service may have several sources of one type
		for _, d := range s.Discovery {
			errs[d.Type] += d.Errors
		}
		for typ, n := range errs {
			counter(c.discoveryErrors, n, s.Name, typ)
		}
		for _, b := range s.Backends {
			counter(c.connections, b.TotalConnections, s.Name, b.Name)
			gauge(c.active, float64(b.ActiveConnections), s.Name, b.Name)
			counter(c.failures, b.FailedConnections, s.Name, b.Name)
			counter(c.bytes, b.BytesIn, s.Name, b.Name, "in")
			counter(c.bytes, b.BytesOut, s.Name, b.Name, "out")
			gauge(c.eligible, boolValue(b.Eligible), s.Name, b.Name)
			for _, st := range backendStates {
				gauge(c.state, boolValue(b.State == st), s.Name, b.Name, st)
			}
			counter(c.checks, b.ChecksSuccess, s.Name, b.Name, "success")
			counter(c.checks, b.ChecksFailure, s.Name, b.Name, "failure")
			gauge(c.circuit, circuitValue(b.Circuit), s.Name, b.Name)
			gauge(c.weight, float64(b.Weight), s.Name, b.Name)
		}
	}
	c.collectFleet(gauge, counter)
}

// collectFleet adds the balance_fleet_* series while the instance is part of a fleet.
func (c *collector) collectFleet(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, int64, ...string)) {
	if c.fleet == nil {
		return
	}
	f, ok := c.fleet.Fleet()
	if !ok {
		return
	}
	gauge(c.fleetConnected, boolValue(f.Connected))
	gauge(c.fleetInstances, float64(len(f.Instances)))
	gauge(c.fleetRevision, float64(f.Revision))
	var sync float64
	if !f.LastSync.IsZero() {
		sync = float64(f.LastSync.UnixNano()) / 1e9
	}
	gauge(c.fleetLastSync, sync)
	counter(c.fleetInvalidKeys, f.InvalidKeys)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// circuitValue maps the breaker state to SPEC §5's numbers.
func circuitValue(state string) float64 {
	switch state {
	case "half_open":
		return 1
	case "open":
		return 2
	}
	return 0
}

// promLogger sends promhttp's errors (a failed scrape) to zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error().Str("error", fmt.Sprint(v...)).Msg("serving metrics")
}

var _ prometheus.Collector = (*collector)(nil)
