package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// specService is the service of a minimal file with every default of SPEC §2
// written out by hand, so that a wrong default in the code cannot hide.
func specService(name, listen string, backends ...Backend) Service {
	return Service{
		Name:          name,
		Listen:        listen,
		Algorithm:     "round_robin",
		ProxyProtocol: "none",
		Timeouts:      Timeouts{Connect: 5 * time.Second, Idle: time.Hour},
		HealthCheck: HealthCheck{
			Enabled:            true,
			Type:               "tcp",
			Interval:           10 * time.Second,
			Timeout:            3 * time.Second,
			HealthyThreshold:   2,
			UnhealthyThreshold: 3,
			Path:               "/health",
			ExpectedStatus:     []int{200, 204},
			Passive: PassiveChecks{
				Enabled:             true,
				ErrorRateThreshold:  0.5,
				MinRequests:         10,
				ConsecutiveFailures: 5,
				Window:              time.Minute,
			},
		},
		Resilience: Resilience{
			CircuitBreaker: CircuitBreaker{Enabled: true, MaxFailures: 5, Timeout: time.Minute, MaxConcurrentRequests: 1},
			Retry: Retry{
				Enabled: true, MaxAttempts: 3, InitialDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second,
				Multiplier: 2, Jitter: 0.1, BudgetRatio: 0.2, MinRetriesPerSecond: 10,
			},
		},
		Backends: backends,
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, doc(
		`[[services]]`,
		`name = "postgres"`,
		`listen = "127.0.0.1:6432"`,
		`[[services.backends]]`,
		`address = "10.0.0.11:5432"`,
		`[[services.backends]]`,
		`name = "pg2"`,
		`address = "10.0.0.12:5432"`,
	))
	want := &Config{
		ShutdownTimeout: 30 * time.Second,
		Admin:           Admin{Listen: "127.0.0.1:9090"},
		Log:             Log{Level: "info", Format: "console", AccessLog: true},
		Fleet: Fleet{Name: "default", DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second,
			PublishInterval: 2 * time.Second},
		Services: []Service{specService("postgres", "127.0.0.1:6432",
			Backend{Name: "10.0.0.11:5432", Address: "10.0.0.11:5432", Weight: 1},
			Backend{Name: "pg2", Address: "10.0.0.12:5432", Weight: 1},
		)},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}

	empty := mustParse(t, "")
	if !reflect.DeepEqual(empty, Default()) {
		t.Errorf("empty file = %+v, want Default() %+v", empty, Default())
	}
}

func TestServiceWithoutBackendsIsAllowed(t *testing.T) {
	cfg := mustParse(t, doc(`[[services]]`, `name = "idle"`, `listen = "127.0.0.1:7000"`))
	if s := cfg.Service("idle"); s == nil || len(s.Backends) != 0 {
		t.Fatalf("Service(idle) = %+v, want a service with no backends", s)
	}
}

func TestPerServiceOverridesMergeKeyByKey(t *testing.T) {
	cfg := mustParse(t, doc(
		`[health_check]`,
		`type = "http"`,
		`interval = "5s"`,
		`expected_status = [200]`,
		`[health_check.passive_checks]`,
		`window = "30s"`,
		`[resilience.retry]`,
		`max_attempts = 5`,
		`jitter = 0.3`,
		`[resilience.circuit_breaker]`,
		`max_failures = 7`,

		`[[services]]`,
		`name = "tuned"`,
		`listen = "127.0.0.1:7001"`,
		`[services.health_check]`,
		`timeout = "1s"`,
		`enabled = false`,
		`[services.health_check.passive_checks]`,
		`consecutive_failures = 2`,
		`[services.resilience.retry]`,
		`max_attempts = 1`,
		`[services.resilience.circuit_breaker]`,
		`timeout = "5s"`,

		`[[services]]`,
		`name = "plain"`,
		`listen = "127.0.0.1:7002"`,
	))

	global := specService("", "")
	global.HealthCheck.Type = "http"
	global.HealthCheck.Interval = 5 * time.Second
	global.HealthCheck.ExpectedStatus = []int{200}
	global.HealthCheck.Passive.Window = 30 * time.Second
	global.Resilience.Retry.MaxAttempts = 5
	global.Resilience.Retry.Jitter = 0.3
	global.Resilience.CircuitBreaker.MaxFailures = 7

	plain := cfg.Service("plain")
	if !reflect.DeepEqual(plain.HealthCheck, global.HealthCheck) || !reflect.DeepEqual(plain.Resilience, global.Resilience) {
		t.Errorf("a service without overrides should inherit the global tables:\n got %+v %+v\nwant %+v %+v",
			plain.HealthCheck, plain.Resilience, global.HealthCheck, global.Resilience)
	}

	wantHC := global.HealthCheck
	wantHC.Timeout = time.Second
	wantHC.Enabled = false
	wantHC.Passive.ConsecutiveFailures = 2
	wantRes := global.Resilience
	wantRes.Retry.MaxAttempts = 1
	wantRes.CircuitBreaker.Timeout = 5 * time.Second
	tuned := cfg.Service("tuned")
	if !reflect.DeepEqual(tuned.HealthCheck, wantHC) {
		t.Errorf("tuned health check:\n got %+v\nwant %+v", tuned.HealthCheck, wantHC)
	}
	if !reflect.DeepEqual(tuned.Resilience, wantRes) {
		t.Errorf("tuned resilience:\n got %+v\nwant %+v", tuned.Resilience, wantRes)
	}

	// Services are independent values: changing one's slice leaves the other alone.
	tuned.HealthCheck.ExpectedStatus[0] = 500
	if plain.HealthCheck.ExpectedStatus[0] != 200 {
		t.Errorf("services share their expected_status slice")
	}
}

func TestAllBackendFieldsAndServiceFields(t *testing.T) {
	cfg := mustParse(t, doc(
		`shutdown_timeout = "5s"`,
		`state_file = "/var/lib/balance/state.json"`,
		`[admin]`,
		`listen = "0.0.0.0:9091"`,
		`token = "s3cret"`,
		`[log]`,
		`level = "debug"`,
		`format = "json"`,
		`access_log = false`,
		`[[services]]`,
		`name = "db_1"`,
		`listen = "[::1]:7000"`,
		`algorithm = "source_hash"`,
		`max_connections = 1000`,
		`proxy_protocol = "v2"`,
		`accept_proxy = true`,
		`slow_start = "30s"`,
		`close_on_unhealthy = true`,
		`timeouts = { connect = "1s", idle = "0s", drain = "2m" }`,
		`backends = [`,
		`  { address = "[2001:db8::1]:5432", weight = 0, backup = true, max_connections = 10 },`,
		`  { name = "b", address = "db.internal:5432", weight = 256 },`,
		`]`,
	))
	want := &Config{
		ShutdownTimeout: 5 * time.Second,
		StateFile:       "/var/lib/balance/state.json",
		Admin:           Admin{Listen: "0.0.0.0:9091", Token: "s3cret"},
		Log:             Log{Level: "debug", Format: "json"},
		Fleet:           defaultFleet(),
	}
	svc := specService("db_1", "[::1]:7000",
		Backend{Name: "[2001:db8::1]:5432", Address: "[2001:db8::1]:5432", Weight: 0, Backup: true, MaxConnections: 10},
		Backend{Name: "b", Address: "db.internal:5432", Weight: 256},
	)
	svc.Algorithm = SourceHash
	svc.MaxConnections = 1000
	svc.ProxyProtocol = "v2"
	svc.AcceptProxy = true
	svc.SlowStart = 30 * time.Second
	svc.CloseOnUnhealthy = true
	svc.Timeouts = Timeouts{Connect: time.Second, Drain: 2 * time.Minute}
	want.Services = []Service{svc}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestSendEscapes(t *testing.T) {
	tests := []struct {
		name, value string // value as written in the file
		want        []byte
	}{
		{"literal string", `'PING\r\n'`, []byte("PING\r\n")},
		{"basic string", `"PING\r\n"`, []byte("PING\r\n")},
		{"tab and backslash", `'a\tb\\c'`, []byte("a\tb\\c")},
		{"hex bytes", `'\x00\xff\x7F'`, []byte{0x00, 0xff, 0x7f}},
		{"escaped backslash in a basic string", `"\\x41"`, []byte("A")},
		{"empty", `''`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, doc(`[health_check]`, `send = `+tt.value, `[[services]]`, `name = "a"`, `listen = "127.0.0.1:7000"`))
			if got := cfg.Services[0].HealthCheck.Send; !slices.Equal(got, tt.want) {
				t.Errorf("send %s = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}

func TestAdminToken(t *testing.T) {
	nonLoopback := doc(`[admin]`, `listen = "0.0.0.0:9090"`)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == TokenEnv {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name      string
		src       string
		getenv    func(string) string
		wantToken string
		wantErr   bool
	}{
		{"env token", nonLoopback, env("from-env"), "from-env", false},
		{"file token wins", doc(`[admin]`, `listen = "0.0.0.0:9090"`, `token = "from-file"`), env("from-env"), "from-file", false},
		{"no token anywhere", nonLoopback, env(""), "", true},
		{"nil getenv", nonLoopback, nil, "", true},
		{"allow_unauthenticated", doc(`[admin]`, `listen = "0.0.0.0:9090"`, `allow_unauthenticated = true`), nil, "", false},
		{"loopback needs no token", doc(`[admin]`, `listen = "[::1]:9090"`), nil, "", false},
		{"localhost needs no token", doc(`[admin]`, `listen = "localhost:9090"`), nil, "", false},
		{"admin disabled", doc(`[admin]`, `listen = ""`), nil, "", false},
		{"env token on loopback", "", env("t"), "t", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseWithEnv([]byte(tt.src), tt.getenv)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want an error, got config %+v", cfg.Admin)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin.Token != tt.wantToken {
				t.Errorf("token = %q, want %q", cfg.Admin.Token, tt.wantToken)
			}
		})
	}
}

func TestParseIgnoresTheEnvironmentLoadReadsIt(t *testing.T) {
	t.Setenv(TokenEnv, "env-token")
	src := []byte(doc(`[admin]`, `listen = "0.0.0.0:9090"`))
	if _, err := Parse(src); err == nil {
		t.Errorf("Parse used the environment's token")
	}
	path := filepath.Join(t.TempDir(), "balance.toml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Token != "env-token" {
		t.Errorf("Load token = %q, want the environment's", cfg.Admin.Token)
	}
}

func TestListenPortZeroIsAllowedAndNeverConflicts(t *testing.T) {
	cfg := mustParse(t, doc(
		`[admin]`, `listen = "127.0.0.1:0"`,
		`[[services]]`, `name = "a"`, `listen = "127.0.0.1:0"`,
		`[[services]]`, `name = "b"`, `listen = "127.0.0.1:0"`,
	))
	if len(cfg.Services) != 2 {
		t.Fatalf("got %d services", len(cfg.Services))
	}
}

func TestServiceLookup(t *testing.T) {
	cfg := mustParse(t, doc(
		`[[services]]`, `name = "a"`, `listen = "127.0.0.1:7000"`,
		`[[services]]`, `name = "b"`, `listen = "127.0.0.1:7001"`,
	))
	if s := cfg.Service("b"); s == nil || s.Listen != "127.0.0.1:7001" {
		t.Errorf("Service(b) = %+v", s)
	}
	if s := cfg.Service("c"); s != nil {
		t.Errorf("Service(c) = %+v, want nil", s)
	}
	cfg.Service("a").MaxConnections = 3
	if cfg.Services[0].MaxConnections != 3 {
		t.Errorf("Service should point into Services")
	}
}

// specKeys is every key of SPEC §2, as the example file must show them.
var specKeys = []string{
	"shutdown_timeout", "state_file",
	"admin", "admin.listen", "admin.token", "admin.allow_unauthenticated",
	"admin.read_token", "admin.tls_cert", "admin.tls_key",
	"log", "log.level", "log.format", "log.access_log", "log.access_log_file",
	"health_check", "health_check.enabled", "health_check.type", "health_check.interval", "health_check.timeout",
	"health_check.healthy_threshold", "health_check.unhealthy_threshold", "health_check.path",
	"health_check.expected_status", "health_check.expect_body", "health_check.send", "health_check.expect",
	"health_check.port", "health_check.tls_skip_verify",
	"health_check.passive_checks", "health_check.passive_checks.enabled",
	"health_check.passive_checks.error_rate_threshold", "health_check.passive_checks.min_requests",
	"health_check.passive_checks.consecutive_failures", "health_check.passive_checks.window",
	"resilience.circuit_breaker", "resilience.circuit_breaker.enabled",
	"resilience.circuit_breaker.max_failures", "resilience.circuit_breaker.timeout",
	"resilience.circuit_breaker.max_concurrent_requests",
	"resilience.retry", "resilience.retry.enabled", "resilience.retry.max_attempts",
	"resilience.retry.initial_delay", "resilience.retry.max_delay", "resilience.retry.multiplier",
	"resilience.retry.jitter", "resilience.retry.budget_ratio", "resilience.retry.min_retries_per_second",
	"services", "services.name", "services.listen", "services.algorithm", "services.max_connections",
	"services.proxy_protocol", "services.accept_proxy", "services.slow_start", "services.close_on_unhealthy",
	"services.timeouts", "services.timeouts.connect", "services.timeouts.idle", "services.timeouts.drain",
	"services.backends", "services.backends.name", "services.backends.address", "services.backends.weight",
	"services.backends.backup", "services.backends.max_connections",
}

func TestExampleFile(t *testing.T) {
	const path = "../balance.toml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("the example balance.toml does not load: %v", err)
	}

	// It shows every key of SPEC §2 ...
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	md, err := toml.Decode(string(data), &m)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, k := range md.Keys() {
		have = append(have, k.String())
	}
	for _, k := range specKeys {
		if !slices.Contains(have, k) {
			t.Errorf("balance.toml does not show %s", k)
		}
	}

	// ... each with its default: it means the same as a file with only the
	// required keys (and the backend names it sets).
	minimal := mustParse(t, doc(
		`[[services]]`, `name = "example"`, `listen = "127.0.0.1:6432"`,
		`[[services.backends]]`, `name = "pg1"`, `address = "127.0.0.1:5433"`,
		`[[services.backends]]`, `name = "pg2"`, `address = "127.0.0.1:5434"`,
	))
	if !reflect.DeepEqual(cfg, minimal) {
		t.Errorf("balance.toml differs from the defaults:\n got %+v\nwant %+v", cfg, minimal)
	}
}
