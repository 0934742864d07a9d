package config

import (
	"fmt"
	"time"
)

// Config is a validated, normalised configuration: every default applied, every
// duration parsed, every per-service override merged. It is immutable after Load;
// a reload builds a new one.
type Config struct {
	ShutdownTimeout time.Duration
	StateFile       string // "" = operator state is not persisted
	Admin           Admin
	Log             Log
	Fleet           Fleet
	Services        []Service
}

// Admin configures the admin HTTP server.
type Admin struct {
	Listen               string // "" disables the admin server
	Token                string // from the file, or BALANCE_ADMIN_TOKEN when the file has none
	ReadToken            string // read-only access; from the file, or BALANCE_ADMIN_READ_TOKEN
	AllowUnauthenticated bool
	TLSCert              string // PEM files; both set (checked to be a usable pair) = HTTPS only
	TLSKey               string
}

// Log configures zerolog.
type Log struct {
	Level     string // debug | info | warn | error
	Format    string // console | json
	AccessLog bool
	// AccessLogFile, when set, receives the access log instead of stderr
	// (appended to; reopened by every reload for logrotate). "" = stderr.
	AccessLogFile string
}

// HealthCheck is the effective health-check configuration of one service: the
// global [health_check] table with the service's own table merged over it.
type HealthCheck struct {
	Enabled            bool
	Type               string // tcp | http | https | postgres | mysql | redis
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	Path               string
	ExpectedStatus     []int
	ExpectBody         string
	Send               []byte // escapes (\r \n \xNN) already decoded
	Expect             string
	Port               int // 0 = the backend's own port
	TLSSkipVerify      bool
	Passive            PassiveChecks
}

// PassiveChecks judges backends from real connection outcomes.
type PassiveChecks struct {
	Enabled             bool
	ErrorRateThreshold  float64
	MinRequests         int
	ConsecutiveFailures int
	Window              time.Duration
}

// Resilience is the effective [resilience] configuration of one service.
type Resilience struct {
	CircuitBreaker CircuitBreaker
	Retry          Retry
}

// CircuitBreaker configures the per-backend breaker.
type CircuitBreaker struct {
	Enabled               bool
	MaxFailures           int
	Timeout               time.Duration
	MaxConcurrentRequests int
}

// Retry configures connect retries.
type Retry struct {
	Enabled             bool
	MaxAttempts         int
	InitialDelay        time.Duration
	MaxDelay            time.Duration
	Multiplier          float64
	Jitter              float64
	BudgetRatio         float64
	MinRetriesPerSecond int
}

// Service is one listener and its backends.
type Service struct {
	Name             string
	Listen           string
	Algorithm        string // round_robin | least_connections | random_two | source_hash
	MaxConnections   int    // 0 = unlimited
	ProxyProtocol    string // none | v1 | v2
	AcceptProxy      bool
	SlowStart        time.Duration
	CloseOnUnhealthy bool
	Timeouts         Timeouts
	HealthCheck      HealthCheck
	Resilience       Resilience
	Backends         []Backend
	Discovery        []Discovery // sources of more backends, found while running
	Edge                         // sni, allow/deny, per-client limits (edge.go)
}

// Discovery is one [[services.discovery]] source.
type Discovery struct {
	Type           string        // dns | etcd
	Name           string        // dns: an SRV name, or host:port for A/AAAA
	Resolver       string        // dns: host:port of the DNS server; "" = the system's
	Interval       time.Duration // dns: how often to ask
	Hold           time.Duration // dns: how long a missing backend is kept
	Weight         int           // for A/AAAA records and etcd members without one
	Backup         bool
	MaxConnections int
}

// Key identifies a discovery source within its service: a reload that keeps
// the same key keeps what the source found.
func (d Discovery) Key() string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%t|%d", d.Type, d.Name, d.Resolver, d.Interval, d.Hold, d.Weight, d.Backup, d.MaxConnections)
}

// Timeouts of one service. Zero Idle and Drain mean never.
type Timeouts struct {
	Connect time.Duration
	Idle    time.Duration
	Drain   time.Duration
}

// Backend is one upstream address of a service.
type Backend struct {
	Name           string // defaults to Address
	Address        string // host:port
	Weight         int    // 0..256; 0 takes no new connections
	Backup         bool
	MaxConnections int // 0 = unlimited
}

// Algorithm names, as written in the file.
const (
	RoundRobin       = "round_robin"
	LeastConnections = "least_connections"
	RandomTwo        = "random_two"
	SourceHash       = "source_hash"
)

// Fleet configures membership in a fleet of instances that share operator
// state through etcd. A zero Fleet (no etcd endpoints) means no fleet.
type Fleet struct {
	Etcd            []string // client URLs, normalised to scheme://host:port
	Name            string
	Instance        string // "" = derived at start (hostname and admin port or PID)
	Advertise       string // "" = derived from admin.listen
	DialTimeout     time.Duration
	RequestTimeout  time.Duration
	PublishInterval time.Duration
	Username        string
	Password        string // from BALANCE_ETCD_PASSWORD, never from the file
	TLSCA           string
	TLSCert         string
	TLSKey          string
}

// Enabled reports whether the instance is part of a fleet.
func (f Fleet) Enabled() bool { return len(f.Etcd) > 0 }

// TLS reports whether etcd is reached over TLS.
func (f Fleet) TLS() bool { return f.TLSCA != "" || f.TLSCert != "" || f.TLSKey != "" }
