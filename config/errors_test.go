package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doc joins lines with newlines, so that line N of the document is argument N.
func doc(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// oneService is a valid service at lines 1-5; cases append lines 6 onwards.
var oneService = []string{
	`[[services]]`,              // 1
	`name = "web"`,              // 2
	`listen = "127.0.0.1:8000"`, // 3
	`[[services.backends]]`,     // 4
	`address = "127.0.0.1:81"`,  // 5
}

func withService(more ...string) string {
	return doc(append(append([]string{}, oneService...), more...)...)
}

type wantErr struct {
	path string
	line int
	msg  string // a substring of Msg
}

// parseErrors parses src and returns its Errors, failing if there are none.
func parseErrors(t *testing.T, src string) Errors {
	t.Helper()
	cfg, err := Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse succeeded, want errors; config: %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with its error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T %v is not config.Errors", err, err)
	}
	return errs
}

func checkErrors(t *testing.T, src string, want []wantErr) {
	t.Helper()
	errs := parseErrors(t, src)
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Path != w.path || e.Line != w.line || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = {path %q, line %d, msg %q}, want {path %q, line %d, msg containing %q}",
				i, e.Path, e.Line, e.Msg, w.path, w.line, w.msg)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantErr
	}{
		// Unknown keys, anywhere, with their indexed path.
		{"unknown top-level key", doc(`colour = "red"`),
			[]wantErr{{"colour", 1, "unknown key"}}},
		{"unknown key in a table", doc(`[log]`, `lvl = "debug"`),
			[]wantErr{{"log.lvl", 2, "unknown key"}}},
		{"unknown key suggests a near one", withService(`wieght = 2`),
			[]wantErr{{"services[0].backends[0].wieght", 6, `did you mean "weight"?`}}},
		{"unknown key in the second service's second backend", doc(
			`[[services]]`,
			`name = "a"`,
			`listen = "127.0.0.1:1000"`,
			`[[services.backends]]`,
			`address = "127.0.0.1:1"`,
			`[[services]]`,
			`name = "b"`,
			`listen = "127.0.0.1:1001"`,
			`[[services.backends]]`,
			`address = "127.0.0.1:2"`,
			`[[services.backends]]`,
			`address = "127.0.0.1:3"`,
			`colour = "red"`,
		), []wantErr{{"services[1].backends[1].colour", 13, "unknown key"}}},
		{"unknown table", doc(`[health]`, `enabled = true`),
			[]wantErr{{"health", 1, "unknown key"}}},
		{"unknown key in a per-service override", withService(
			`[services.resilience.retry]`,
			`attempts = 2`,
		), []wantErr{{"services[0].resilience.retry.attempts", 7, "unknown key"}}},
		{"quoted unknown key", doc(`[log]`, `"odd key" = 1`),
			[]wantErr{{`log."odd key"`, 2, "unknown key"}}},

		// Wrong types.
		{"string for an integer", withService(`weight = "3"`),
			[]wantErr{{"services[0].backends[0].weight", 6, `must be an integer, got string "3"`}}},
		{"float for an integer", withService(`weight = 1.5`),
			[]wantErr{{"services[0].backends[0].weight", 6, "must be an integer, got float 1.5"}}},
		{"string for a boolean", doc(`[log]`, `access_log = "yes"`),
			[]wantErr{{"log.access_log", 2, "must be a boolean"}}},
		{"integer for a string", doc(`state_file = 1`),
			[]wantErr{{"state_file", 1, "must be a string, got integer 1"}}},
		{"string for a float", doc(`[resilience.retry]`, `multiplier = "2"`),
			[]wantErr{{"resilience.retry.multiplier", 2, "must be a number"}}},
		{"date for a string", doc(`[log]`, `level = 2024-01-02`),
			[]wantErr{{"log.level", 2, "must be a string, got a date/time"}}},
		{"value for a table", doc(`admin = 1`),
			[]wantErr{{"admin", 1, "must be a table"}}},
		{"table for a value", doc(`[shutdown_timeout]`),
			[]wantErr{{"shutdown_timeout", 1, "must be a duration string"}}},
		{"services as one table", doc(`[services]`, `name = "a"`),
			[]wantErr{{"services", 1, "must be an array of tables ([[services]])"}}},
		{"services array of numbers", doc(`services = [1, 2]`),
			[]wantErr{{"services[0]", 1, "must be a table, got integer 1"}, {"services[1]", 1, "must be a table, got integer 2"}}},

		// Durations.
		{"duration without a unit", doc(`[health_check]`, `interval = "10"`),
			[]wantErr{{"health_check.interval", 2, `got "10"`}}},
		{"duration as a number", doc(`shutdown_timeout = 30`),
			[]wantErr{{"shutdown_timeout", 1, "must be a duration string"}}},
		{"negative duration", withService(`[services.timeouts]`, `idle = "-1s"`),
			[]wantErr{{"services[0].timeouts.idle", 7, "must not be negative"}}},
		{"negative slow_start", doc(
			`[[services]]`,
			`name = "web"`,
			`listen = "127.0.0.1:8000"`,
			`slow_start = "-5m"`,
		), []wantErr{{"services[0].slow_start", 4, "must not be negative"}}},
		{"zero interval", doc(`[health_check]`, `interval = "0s"`),
			[]wantErr{{"health_check.interval", 2, "must be greater than 0"}}},
		{"zero connect timeout", withService(`[services.timeouts]`, `connect = "0s"`),
			[]wantErr{{"services[0].timeouts.connect", 7, "must be greater than 0"}}},
		{"zero window", doc(`[health_check.passive_checks]`, `window = "0s"`),
			[]wantErr{{"health_check.passive_checks.window", 2, "must be greater than 0"}}},
		{"zero breaker timeout", doc(`[resilience.circuit_breaker]`, `timeout = "0s"`),
			[]wantErr{{"resilience.circuit_breaker.timeout", 2, "must be greater than 0"}}},
		{"negative shutdown timeout", doc(`shutdown_timeout = "-1s"`),
			[]wantErr{{"shutdown_timeout", 1, "must not be negative"}}},
		{"initial_delay above max_delay", doc(`[resilience.retry]`, `initial_delay = "20s"`),
			[]wantErr{{"resilience.retry.initial_delay", 2, "must not exceed max_delay (10s), got 20s"}}},
		{"service max_delay below the inherited initial_delay", withService(
			`[services.resilience.retry]`,
			`max_delay = "50ms"`,
		), []wantErr{{"services[0].resilience.retry.max_delay", 7, "must not be less than initial_delay (100ms), got 50ms"}}},

		// Duplicates are named where the second one stands.
		{"duplicate service name", doc(
			`[[services]]`,
			`name = "web"`,
			`listen = "127.0.0.1:8000"`,
			`[[services]]`,
			`listen = "127.0.0.1:8001"`,
			`name = "web"`,
		), []wantErr{{"services[1].name", 6, `duplicate service name "web" (also services[0].name)`}}},
		{"duplicate backend name", withService(
			`name = "b"`,
			`[[services.backends]]`,
			`address = "127.0.0.1:82"`,
			`name = "b"`,
		), []wantErr{{"services[0].backends[1].name", 9, `duplicate backend name "b" (also services[0].backends[0].name)`}}},
		{"duplicate backend name defaulted from the address", withService(
			`[[services.backends]]`,
			`address = "127.0.0.1:81"`,
		), []wantErr{{"services[0].backends[1].address", 7, `duplicate backend name "127.0.0.1:81"`}}},
		{"same backend name in two services is fine, same listen is not", doc(
			`[[services]]`,
			`name = "a"`,
			`listen = "127.0.0.1:8000"`,
			`[[services.backends]]`,
			`address = "127.0.0.1:81"`,
			`[[services]]`,
			`name = "b"`,
			`listen = "127.0.0.1:8000"`,
			`[[services.backends]]`,
			`address = "127.0.0.1:81"`,
		), []wantErr{{"services[1].listen", 8, `"127.0.0.1:8000" conflicts with services[0].listen = "127.0.0.1:8000"`}}},
		{"wildcard listen conflicts with a specific one", doc(
			`[[services]]`,
			`name = "a"`,
			`listen = "127.0.0.1:8000"`,
			`[[services]]`,
			`name = "b"`,
			`listen = ":8000"`,
		), []wantErr{{"services[1].listen", 6, "conflicts with services[0].listen"}}},
		{"listen conflicts with admin.listen", doc(
			`[[services]]`,
			`name = "a"`,
			`listen = "127.0.0.1:9090"`,
		), []wantErr{{"services[0].listen", 3, `conflicts with admin.listen = "127.0.0.1:9090"`}}},

		// Addresses.
		{"backend address without a port", withService(`[[services.backends]]`, `address = "127.0.0.1"`),
			[]wantErr{{"services[0].backends[1].address", 7, "must be host:port"}}},
		{"backend address with a named port", withService(`[[services.backends]]`, `address = "db:postgres"`),
			[]wantErr{{"services[0].backends[1].address", 7, "port must be a number"}}},
		{"backend port too large", withService(`[[services.backends]]`, `address = "127.0.0.1:65536"`),
			[]wantErr{{"services[0].backends[1].address", 7, "port must be between 1 and 65535, got 65536"}}},
		{"backend port zero", withService(`[[services.backends]]`, `address = "127.0.0.1:0"`),
			[]wantErr{{"services[0].backends[1].address", 7, "port must be between 1 and 65535, got 0"}}},
		{"backend without a host", withService(`[[services.backends]]`, `address = ":5432"`),
			[]wantErr{{"services[0].backends[1].address", 7, "needs a host"}}},
		{"unbracketed IPv6 backend", withService(`[[services.backends]]`, `address = "::1:5432"`),
			[]wantErr{{"services[0].backends[1].address", 7, "must be host:port"}}},
		{"listen not host:port", doc(`[[services]]`, `name = "a"`, `listen = "8000"`),
			[]wantErr{{"services[0].listen", 3, "must be host:port"}}},
		{"listen port negative", doc(`[[services]]`, `name = "a"`, `listen = "127.0.0.1:-1"`),
			[]wantErr{{"services[0].listen", 3, "port must be a number"}}},
		{"admin.listen not host:port", doc(`[admin]`, `listen = "localhost"`),
			[]wantErr{{"admin.listen", 2, "must be host:port"}}},
		{"admin beyond loopback without a token", doc(`[admin]`, `listen = "0.0.0.0:9090"`),
			[]wantErr{{"admin.listen", 2, "is not a loopback address, so the admin server needs a token: set BALANCE_ADMIN_TOKEN in the environment"}}},
		{"admin on every interface without a token", doc(`[admin]`, `listen = ":9090"`),
			[]wantErr{{"admin.listen", 2, "is not a loopback address"}}},

		// Ranges.
		{"weight above 256", withService(`weight = 300`),
			[]wantErr{{"services[0].backends[0].weight", 6, "must be between 0 and 256, got 300"}}},
		{"negative weight", withService(`weight = -1`),
			[]wantErr{{"services[0].backends[0].weight", 6, "must be between 0 and 256, got -1"}}},
		{"healthy_threshold zero", doc(`[health_check]`, `healthy_threshold = 0`),
			[]wantErr{{"health_check.healthy_threshold", 2, "must be at least 1, got 0"}}},
		{"unhealthy_threshold zero in a service", withService(`[services.health_check]`, `unhealthy_threshold = 0`),
			[]wantErr{{"services[0].health_check.unhealthy_threshold", 7, "must be at least 1, got 0"}}},
		{"consecutive_failures zero", doc(`[health_check.passive_checks]`, `consecutive_failures = 0`),
			[]wantErr{{"health_check.passive_checks.consecutive_failures", 2, "must be at least 1"}}},
		{"min_requests zero", doc(`[health_check.passive_checks]`, `min_requests = 0`),
			[]wantErr{{"health_check.passive_checks.min_requests", 2, "must be at least 1"}}},
		{"max_failures zero", doc(`[resilience.circuit_breaker]`, `max_failures = 0`),
			[]wantErr{{"resilience.circuit_breaker.max_failures", 2, "must be at least 1"}}},
		{"max_concurrent_requests zero", doc(`[resilience.circuit_breaker]`, `max_concurrent_requests = 0`),
			[]wantErr{{"resilience.circuit_breaker.max_concurrent_requests", 2, "must be at least 1"}}},
		{"error_rate_threshold above 1", doc(`[health_check.passive_checks]`, `error_rate_threshold = 1.5`),
			[]wantErr{{"health_check.passive_checks.error_rate_threshold", 2, "must be between 0 and 1, got 1.5"}}},
		{"negative jitter", doc(`[resilience.retry]`, `jitter = -0.1`),
			[]wantErr{{"resilience.retry.jitter", 2, "must be between 0 and 1, got -0.1"}}},
		{"budget_ratio as integer 2", doc(`[resilience.retry]`, `budget_ratio = 2`),
			[]wantErr{{"resilience.retry.budget_ratio", 2, "must be between 0 and 1, got 2"}}},
		{"NaN jitter", doc(`[resilience.retry]`, `jitter = nan`),
			[]wantErr{{"resilience.retry.jitter", 2, "must be a finite number"}}},
		{"max_attempts zero", doc(`[resilience.retry]`, `max_attempts = 0`),
			[]wantErr{{"resilience.retry.max_attempts", 2, "must be at least 1, got 0"}}},
		{"multiplier below 1", doc(`[resilience.retry]`, `multiplier = 0.5`),
			[]wantErr{{"resilience.retry.multiplier", 2, "must be at least 1, got 0.5"}}},
		{"infinite multiplier", doc(`[resilience.retry]`, `multiplier = inf`),
			[]wantErr{{"resilience.retry.multiplier", 2, "must be a finite number"}}},
		{"negative min_retries_per_second", doc(`[resilience.retry]`, `min_retries_per_second = -1`),
			[]wantErr{{"resilience.retry.min_retries_per_second", 2, "must not be negative, got -1"}}},
		{"negative service max_connections", doc(
			`[[services]]`,
			`name = "a"`,
			`listen = "127.0.0.1:8000"`,
			`max_connections = -1`,
		), []wantErr{{"services[0].max_connections", 4, "must not be negative, got -1"}}},
		{"negative backend max_connections", withService(`max_connections = -5`),
			[]wantErr{{"services[0].backends[0].max_connections", 6, "must not be negative, got -5"}}},
		{"negative check port", doc(`[health_check]`, `port = -1`),
			[]wantErr{{"health_check.port", 2, "must be between 0 and 65535, got -1"}}},
		{"check port above 65535", doc(`[health_check]`, `port = 70000`),
			[]wantErr{{"health_check.port", 2, "must be between 0 and 65535, got 70000"}}},
		{"expected_status out of range", doc(`[health_check]`, `expected_status = [200, 99, 600, "x"]`),
			[]wantErr{
				{"health_check.expected_status[1]", 2, "must be between 100 and 599, got 99"},
				{"health_check.expected_status[2]", 2, "must be between 100 and 599, got 600"},
				{"health_check.expected_status[3]", 2, `must be an integer, got string "x"`},
			}},
		{"expected_status on several lines", doc(`[health_check]`, `expected_status = [`, `  200,`, `  700,`, `]`),
			[]wantErr{{"health_check.expected_status[1]", 4, "got 700"}}},
		{"expected_status empty", doc(`[health_check]`, `expected_status = []`),
			[]wantErr{{"health_check.expected_status", 2, "at least one status code"}}},
		{"expected_status not an array", doc(`[health_check]`, `expected_status = 200`),
			[]wantErr{{"health_check.expected_status", 2, "must be an array of status codes"}}},
		{"check path without a slash", doc(`[health_check]`, `path = "health"`),
			[]wantErr{{"health_check.path", 2, "must start with /"}}},

		// Enumerations.
		{"check type", doc(`[health_check]`, `type = "udp"`),
			[]wantErr{{"health_check.type", 2, `must be one of tcp | http | https | postgres | mysql | redis, got "udp"`}}},
		{"algorithm", doc(`[[services]]`, `name = "a"`, `listen = "127.0.0.1:8000"`, `algorithm = "roundrobin"`),
			[]wantErr{{"services[0].algorithm", 4, `got "roundrobin"`}}},
		{"proxy_protocol", doc(`[[services]]`, `name = "a"`, `listen = "127.0.0.1:8000"`, `proxy_protocol = "v3"`),
			[]wantErr{{"services[0].proxy_protocol", 4, "must be one of none | v1 | v2"}}},
		{"log level", doc(`[log]`, `level = "trace"`),
			[]wantErr{{"log.level", 2, "must be one of debug | info | warn | error"}}},
		{"log format", doc(`[log]`, `format = "xml"`),
			[]wantErr{{"log.format", 2, "must be one of console | json"}}},

		// Names.
		{"service name with capitals", doc(`[[services]]`, `name = "Web"`, `listen = "127.0.0.1:8000"`),
			[]wantErr{{"services[0].name", 2, `must match [a-z0-9_-]+, got "Web"`}}},
		{"service name with a space", doc(`[[services]]`, `name = "a b"`, `listen = "127.0.0.1:8000"`),
			[]wantErr{{"services[0].name", 2, "must match [a-z0-9_-]+"}}},
		{"empty service name", doc(`[[services]]`, `name = ""`, `listen = "127.0.0.1:8000"`),
			[]wantErr{{"services[0].name", 2, "must not be empty"}}},
		{"backend name with a slash", withService(`name = "a/b"`),
			[]wantErr{{"services[0].backends[0].name", 6, "must not contain /"}}},
		{"empty backend name", withService(`name = ""`),
			[]wantErr{{"services[0].backends[0].name", 6, "must not be empty"}}},

		// Missing keys are reported at their table's line.
		{"missing name and listen", doc(`# a comment`, `[[services]]`, `algorithm = "random_two"`),
			[]wantErr{
				{"services[0].listen", 2, "missing required key"},
				{"services[0].name", 2, "missing required key"},
			}},
		{"missing backend address", withService(`[[services.backends]]`, `name = "b"`),
			[]wantErr{{"services[0].backends[1].address", 6, "missing required key"}}},

		// send escapes.
		{"send with an unknown escape", doc(`[health_check]`, `send = 'PING\q'`),
			[]wantErr{{"health_check.send", 2, `invalid escape \q at byte 4`}}},
		{"send with a short \\x", doc(`[health_check]`, `send = 'a\x4'`),
			[]wantErr{{"health_check.send", 2, `\x at byte 1 needs two hex digits`}}},
		{"send with a bad \\x", doc(`[health_check]`, `send = '\xzz'`),
			[]wantErr{{"health_check.send", 2, `needs two hex digits, got "zz"`}}},
		{"send ending in a backslash", withService(`[services.health_check]`, `send = 'PING\'`),
			[]wantErr{{"services[0].health_check.send", 7, "lone backslash"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, tt.src, tt.want)
		})
	}
}

func TestParseReportsEveryErrorSortedByLine(t *testing.T) {
	src := doc(
		`shutdown_timeout = "soon"`, // 1
		`[log]`,                     // 2
		`level = "loud"`,            // 3
		`[[services]]`,              // 4
		`name = "web"`,              // 5
		`listen = "127.0.0.1:8000"`, // 6
		`[[services.backends]]`,     // 7
		`address = "10.0.0.1"`,      // 8
		`weight = 300`,              // 9
		`[[services]]`,              // 10
		`name = "web"`,              // 11
		`colour = "blue"`,           // 12
	)
	want := []wantErr{
		{"shutdown_timeout", 1, `got "soon"`},
		{"log.level", 3, `got "loud"`},
		{"services[0].backends[0].address", 8, "must be host:port"},
		{"services[0].backends[0].weight", 9, "got 300"},
		{"services[1].listen", 10, "missing required key"},
		{"services[1].name", 11, "duplicate service name"},
		{"services[1].colour", 12, "unknown key"},
	}
	checkErrors(t, src, want)
}

func TestSyntaxErrorIsOneErrorWithItsLine(t *testing.T) {
	src := doc(`[log]`, `level = "info"`, `format = json`)
	errs := parseErrors(t, src)
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(errs), errs)
	}
	if e := errs[0]; e.Line != 3 || e.Path != "" || !strings.HasPrefix(e.Msg, "invalid TOML: ") {
		t.Errorf("got %+v, want line 3, no path, an invalid TOML message", e)
	}
}

func TestDuplicateTOMLKeyIsASyntaxError(t *testing.T) {
	errs := parseErrors(t, doc(`[log]`, `level = "info"`, `level = "warn"`))
	if len(errs) != 1 || errs[0].Line != 3 {
		t.Fatalf("got %v, want one error on line 3", errs)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "balance.toml", Line: 12, Path: "services[1].backends[0].weight", Msg: "must be between 0 and 256, got 300"},
			"balance.toml:12: services[1].backends[0].weight: must be between 0 and 256, got 300"},
		{Error{Line: 3, Path: "log.level", Msg: "bad"}, "line 3: log.level: bad"},
		{Error{File: "f.toml", Path: "x", Msg: "bad"}, "f.toml: x: bad"},
		{Error{File: "f.toml", Line: 2, Msg: "invalid TOML: oops"}, "f.toml:2: invalid TOML: oops"},
		{Error{Path: "x", Msg: "bad"}, "x: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	errs := Errors{&tests[0].e, &tests[1].e}
	if got, want := errs.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestLoadPrefixesTheFileName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "balance.toml")
	src := doc(
		`[[services]]`,
		`name = "web"`,
		`listen = "127.0.0.1:8000"`,
		`[[services]]`,
		`name = "db"`,
		`listen = "127.0.0.1:8001"`,
		`[[services.backends]]`,
		`address = "127.0.0.1:5432"`,
		`weight = 300`,
	)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + ":9: services[1].backends[0].weight: must be between 0 and 256, got 300"
	if err == nil || err.Error() != want {
		t.Fatalf("Load error = %v, want %q", err, want)
	}
	// errors.As reaches the single problem too.
	var e *Error
	if !errors.As(err, &e) || e.Path != "services[1].backends[0].weight" || e.File != path {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file = %v, want os.ErrNotExist", err)
	}
	var errs Errors
	if errors.As(err, &errs) {
		t.Errorf("a read failure should not be config.Errors")
	}
}
