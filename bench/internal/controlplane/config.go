// Package controlplane measures balance-l4 at scale away from the data path: the
// CPU it spends health-checking 10 000 backends every second and how late those
// checks run, and how long its admin server takes to render the dashboard for
// 1 000 backends. Both drive the real binary over sockets: a generated
// configuration, the admin API, /proc.
package controlplane

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scale is the shape of a generated configuration: services × backends each,
// every service's backends spread over the same echo addresses.
type Scale struct {
	Listens  []string // one listen address per service
	Backends []string // addresses each service's backends use, in turn
	PerSvc   int      // backends per service
	Admin    string   // admin listen address
	Checks   bool     // active health checks on
	Interval time.Duration
	Timeout  time.Duration
}

// Config renders s as a balance-l4 configuration (SPEC §2). Backend names are
// unique within a service, as SPEC requires; addresses repeat across services,
// which SPEC allows.
func Config(s Scale) string {
	var b strings.Builder
	fmt.Fprintf(&b, `shutdown_timeout = "1s"

[admin]
listen = %s

[log]
level = "warn"
access_log = false

[health_check]
enabled = %t
type = "tcp"
interval = %s
timeout = %s
`, strconv.Quote(s.Admin), s.Checks, strconv.Quote(s.Interval.String()), strconv.Quote(s.Timeout.String()))
	for i, listen := range s.Listens {
		fmt.Fprintf(&b, "\n[[services]]\nname = \"svc%03d\"\nlisten = %s\n", i, strconv.Quote(listen))
		for j := range s.PerSvc {
			addr := s.Backends[j%len(s.Backends)]
			fmt.Fprintf(&b, "\n[[services.backends]]\nname = \"b%03d\"\naddress = %s\n", j, strconv.Quote(addr))
		}
	}
	return b.String()
}
