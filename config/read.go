package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// read turns a decoded document into a Config, reporting every problem to c.
// The result is meaningful only when c found none.
func (c *checker) read(doc map[string]any, getenv func(string) string) *Config {
	root := c.table(nil, doc)
	cfg := Default()
	root.duration("shutdown_timeout", &cfg.ShutdownTimeout, nonNegative)
	root.str("state_file", &cfg.StateFile)

	adminTable, _ := root.sub("admin")
	adminListen := readAdmin(adminTable, &cfg.Admin, getenv)
	logTable, _ := root.sub("log")
	readLog(logTable, &cfg.Log)
	fleetTable, _ := root.sub("fleet")
	readFleet(fleetTable, &cfg.Fleet, getenv)
	c.fleet = cfg.Fleet.Enabled()

	// The global tables, read over the defaults, are what every service
	// inherits and then overrides key by key.
	hc := defaultHealthCheck()
	hcTable, _ := root.sub("health_check")
	readHealthCheck(hcTable, &hc)
	res := defaultResilience()
	resTable, _ := root.sub("resilience")
	readResilience(resTable, &res)

	names := make(map[string]keyPath)
	var listens []boundListen
	var shared sharedListens
	if adminListen != nil {
		listens = append(listens, *adminListen)
	}
	for _, st := range root.tables("services") {
		svc, listen := readService(st, hc, res)
		namePath := st.path.key("name")
		if svc.Name != "" {
			if first, dup := names[svc.Name]; dup {
				c.add(namePath, "duplicate service name %q (also %s)", svc.Name, first)
			} else {
				names[svc.Name] = namePath
			}
		}
		if listen != nil {
			for _, other := range listens {
				if listen.addr.conflicts(other.addr) && !listen.shares(other) {
					c.add(listen.path, "%q conflicts with %s = %q", listen.text, other.path, other.text)
					break
				}
			}
			listens = append(listens, *listen)
		}
		shared.add(st.path, svc, listen)
		cfg.Services = append(cfg.Services, svc)
	}
	shared.check(c)
	root.finish()
	return cfg
}

// boundListen is a valid listen address and where it was configured.
type boundListen struct {
	addr listenAddr
	path keyPath
	text string
}

func readLog(t *table, l *Log) {
	t.enum("level", &l.Level, "debug", "info", "warn", "error")
	t.enum("format", &l.Format, "console", "json")
	t.boolean("access_log", &l.AccessLog)
	if t.str("access_log_file", &l.AccessLogFile) {
		checkAccessLogFile(t, l.AccessLogFile)
	}
	t.finish()
}

// checkAccessLogFile: the file is created at start if need be, so its
// directory must exist, and the path must not be a directory. -check finds
// a typo in the path before a start does. The path is relative to the
// working directory, like admin.tls_cert.
func checkAccessLogFile(t *table, path string) {
	p := t.path.key("access_log_file")
	if path == "" {
		return // the default: the access log goes to stderr
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		t.c.add(p, "%q is a directory; name a file in it", path)
		return
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		t.c.add(p, "directory %q of %q: %v", dir, path, errors.Unwrap(err))
	case !fi.IsDir():
		t.c.add(p, "%q of %q is not a directory", dir, path)
	}
}

// Health-check types, as written in the file.
var healthCheckTypes = []string{"tcp", "http", "https", "postgres", "mysql", "redis"}

// readHealthCheck reads a [health_check] table over hc: the defaults for the
// global table, the global values for a service's own.
func readHealthCheck(t *table, hc *HealthCheck) {
	t.boolean("enabled", &hc.Enabled)
	t.enum("type", &hc.Type, healthCheckTypes...)
	t.duration("interval", &hc.Interval, positive)
	t.duration("timeout", &hc.Timeout, positive)
	t.integer("healthy_threshold", &hc.HealthyThreshold, 1, noMax)
	t.integer("unhealthy_threshold", &hc.UnhealthyThreshold, 1, noMax)
	var path string
	if t.str("path", &path) {
		if strings.HasPrefix(path, "/") {
			hc.Path = path
		} else {
			t.c.add(t.path.key("path"), "must start with /, got %q", path)
		}
	}
	t.statusCodes("expected_status", &hc.ExpectedStatus)
	t.str("expect_body", &hc.ExpectBody)
	var send string
	if t.str("send", &send) {
		if b, err := decodeEscapes(send); err != nil {
			t.c.add(t.path.key("send"), "%v", err)
		} else {
			hc.Send = b
		}
	}
	t.str("expect", &hc.Expect)
	t.integer("port", &hc.Port, 0, 65535)
	t.boolean("tls_skip_verify", &hc.TLSSkipVerify)

	passive, _ := t.sub("passive_checks")
	passive.boolean("enabled", &hc.Passive.Enabled)
	passive.ratio("error_rate_threshold", &hc.Passive.ErrorRateThreshold)
	passive.integer("min_requests", &hc.Passive.MinRequests, 1, noMax)
	passive.integer("consecutive_failures", &hc.Passive.ConsecutiveFailures, 1, noMax)
	passive.duration("window", &hc.Passive.Window, positive)
	passive.finish()
	t.finish()
}

// readResilience reads a [resilience] table over r, like readHealthCheck.
func readResilience(t *table, r *Resilience) {
	cb, _ := t.sub("circuit_breaker")
	cb.boolean("enabled", &r.CircuitBreaker.Enabled)
	cb.integer("max_failures", &r.CircuitBreaker.MaxFailures, 1, noMax)
	cb.duration("timeout", &r.CircuitBreaker.Timeout, positive)
	cb.integer("max_concurrent_requests", &r.CircuitBreaker.MaxConcurrentRequests, 1, noMax)
	cb.finish()

	rt, _ := t.sub("retry")
	rt.boolean("enabled", &r.Retry.Enabled)
	rt.integer("max_attempts", &r.Retry.MaxAttempts, 1, noMax)
	initialSet, maxSet := rt.has("initial_delay"), rt.has("max_delay")
	initialOK := rt.duration("initial_delay", &r.Retry.InitialDelay, nonNegative) || !initialSet
	maxOK := rt.duration("max_delay", &r.Retry.MaxDelay, nonNegative) || !maxSet
	rt.atLeast("multiplier", &r.Retry.Multiplier, 1)
	rt.ratio("jitter", &r.Retry.Jitter)
	rt.ratio("budget_ratio", &r.Retry.BudgetRatio)
	rt.integer("min_retries_per_second", &r.Retry.MinRetriesPerSecond, 0, noMax)
	rt.finish()
	t.finish()

	// Judged on the merged values, but only where this table set one of
	// them: an inherited mistake is reported once, where it was made.
	if initialOK && maxOK && (initialSet || maxSet) && r.Retry.InitialDelay > r.Retry.MaxDelay {
		if initialSet {
			t.c.add(rt.path.key("initial_delay"), "must not exceed max_delay (%s), got %s", r.Retry.MaxDelay, r.Retry.InitialDelay)
		} else {
			t.c.add(rt.path.key("max_delay"), "must not be less than initial_delay (%s), got %s", r.Retry.InitialDelay, r.Retry.MaxDelay)
		}
	}
}

// readService reads one [[services]] table; its health_check and resilience
// start from the global values hc and res. It returns the listen address
// when that is valid, for the conflict check.
func readService(t *table, hc HealthCheck, res Resilience) (Service, *boundListen) {
	s := defaultService()
	hc.ExpectedStatus = slices.Clone(hc.ExpectedStatus)
	hc.Send = slices.Clone(hc.Send)
	s.HealthCheck, s.Resilience = hc, res

	if t.required("name", &s.Name) && !isServiceName(s.Name) {
		t.c.add(t.path.key("name"), "must match [a-z0-9_-]+, got %q", s.Name)
	}
	var listen *boundListen
	if t.required("listen", &s.Listen) {
		p := t.path.key("listen")
		if host, port, err := splitAddress(s.Listen, anyPort); err != nil {
			t.c.add(p, "%v", err)
		} else {
			listen = &boundListen{addr: newListenAddr(host, port), path: p, text: s.Listen}
		}
	}
	t.enum("algorithm", &s.Algorithm, RoundRobin, LeastConnections, RandomTwo, SourceHash)
	t.integer("max_connections", &s.MaxConnections, 0, noMax)
	t.enum("proxy_protocol", &s.ProxyProtocol, "none", "v1", "v2")
	t.boolean("accept_proxy", &s.AcceptProxy)
	t.duration("slow_start", &s.SlowStart, nonNegative)
	t.boolean("close_on_unhealthy", &s.CloseOnUnhealthy)

	timeouts, _ := t.sub("timeouts")
	timeouts.duration("connect", &s.Timeouts.Connect, positive)
	timeouts.duration("idle", &s.Timeouts.Idle, nonNegative)
	timeouts.duration("drain", &s.Timeouts.Drain, nonNegative)
	timeouts.finish()

	hcTable, _ := t.sub("health_check")
	readHealthCheck(hcTable, &s.HealthCheck)
	resTable, _ := t.sub("resilience")
	readResilience(resTable, &s.Resilience)

	// An empty pool is allowed: an operator may keep a service listening
	// with no backend during maintenance; its clients are refused.
	names := make(map[string]keyPath)
	for _, bt := range t.tables("backends") {
		b := readBackend(bt)
		s.Backends = append(s.Backends, b)
		if b.Name == "" {
			continue // already reported
		}
		p := bt.path.key("name")
		if !bt.has("name") {
			p = bt.path.key("address")
		}
		if first, dup := names[b.Name]; dup {
			t.c.add(p, "duplicate backend name %q (also %s)", b.Name, first)
		} else {
			names[b.Name] = p
		}
	}
	s.Discovery = readDiscoveries(t)
	readEdge(t, &s.Edge)
	t.finish()
	return s, listen
}

func readBackend(t *table) Backend {
	b := defaultBackend()
	if t.required("address", &b.Address) {
		if _, _, err := splitAddress(b.Address, nonZeroPort); err != nil {
			t.c.add(t.path.key("address"), "%v", err)
		}
	}
	if t.has("name") {
		if t.str("name", &b.Name) {
			switch {
			case b.Name == "":
				t.c.add(t.path.key("name"), "must not be empty (leave it out to use the address)")
			case strings.ContainsFunc(b.Name, func(r rune) bool { return r == '/' || r < ' ' || r == 0x7f }):
				t.c.add(t.path.key("name"), "must not contain / or control characters (it is part of admin URLs), got %q", b.Name)
			}
		}
	} else {
		t.lookup("name")
		b.Name = b.Address
	}
	t.integer("weight", &b.Weight, 0, 256)
	t.boolean("backup", &b.Backup)
	t.integer("max_connections", &b.MaxConnections, 0, noMax)
	t.finish()
	return b
}

func isServiceName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}
