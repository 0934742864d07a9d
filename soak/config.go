package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// configSpec is the soak's balance-l4 configuration; variants of it are what
// the chaos loop reloads.
type configSpec struct {
	AdminListen   string
	Token         string
	StateFile     string
	ServiceListen string
	Algorithm     string
	Backends      []configBackend
	Fleet         *fleetSpec // nil: no [fleet], one instance
}

// fleetSpec is the [fleet] table of a fleet soak's instances: the same etcd
// and name for all, each its own instance id.
type fleetSpec struct {
	Etcd     []string
	Name     string
	Instance string
}

type configBackend struct {
	Name    string
	Address string
	Weight  int
}

// TOML renders the file. Health checks are fast so that a killed backend
// leaves and a restarted one rejoins within a second; the breaker's timeout
// is short for the same reason. Retries keep their defaults: a connect to a
// killed backend moves to another one at once.
func (c configSpec) TOML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `shutdown_timeout = "5s"
state_file = %q

[admin]
listen = %q
token = %q

[log]
level = "info"
format = "json"
access_log = true

[health_check]
type = "tcp"
interval = "250ms"
timeout = "1s"
healthy_threshold = 2
unhealthy_threshold = 3

[resilience.circuit_breaker]
max_failures = 5
timeout = "2s"

`, c.StateFile, c.AdminListen, c.Token)
	if f := c.Fleet; f != nil {
		// The timeouts are SPEC's defaults; registry entries every second.
		fmt.Fprintf(&b, `
[fleet]
etcd = [%s]
name = %q
instance = %q
dial_timeout = "2s"
request_timeout = "2s"
publish_interval = "1s"
`, quoteList(f.Etcd), f.Name, f.Instance)
	}
	fmt.Fprintf(&b, `
[[services]]
name = "soak"
listen = %q
algorithm = %q

[services.timeouts]
connect = "2s"
idle = "60s"
`, c.ServiceListen, c.Algorithm)
	for _, be := range c.Backends {
		fmt.Fprintf(&b, "\n[[services.backends]]\nname = %q\naddress = %q\nweight = %d\n", be.Name, be.Address, be.Weight)
	}
	return b.String()
}

// badConfigs returns files that must each be rejected whole: a syntax error
// and one of every kind of validation error SPEC §2 lists.
func (c configSpec) badConfigs() []string {
	good := c.TOML()
	first := fmt.Sprintf("name = %q", c.Backends[0].Name)
	withBackendLine := func(line string) string {
		return strings.Replace(good, first, first+"\n"+line, 1)
	}
	bad := []string{
		good + "\nthis is [not toml\n",
		withBackendLine("colour = \"blue\""),
		strings.Replace(good, fmt.Sprintf("weight = %d", c.Backends[0].Weight), "weight = 300", 1),
		strings.Replace(good, `interval = "250ms"`, `interval = "soon"`, 1),
		strings.Replace(good, fmt.Sprintf("address = %q", c.Backends[0].Address), `address = "nonsense"`, 1),
		strings.Replace(good, fmt.Sprintf("name = %q", c.Backends[1].Name), first, 1),
		strings.Replace(good, fmt.Sprintf("algorithm = %q", c.Algorithm), `algorithm = "fastest"`, 1),
		strings.Replace(good, "unhealthy_threshold = 3", "unhealthy_threshold = 0", 1),
		good + fmt.Sprintf("\n[[services]]\nname = \"twin\"\nlisten = %q\n[[services.backends]]\naddress = %q\n", c.ServiceListen, c.Backends[0].Address),
	}
	if f := c.Fleet; f != nil {
		bad = append(bad,
			strings.Replace(good, fmt.Sprintf("name = %q", f.Name), `name = "Not A Fleet Name"`, 1),
			strings.Replace(good, `request_timeout = "2s"`, `request_timeout = "-2s"`, 1))
	}
	return bad
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// writeAtomically replaces path's content in one rename, so a reload never
// reads half a file.
func writeAtomically(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".soak-config-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
