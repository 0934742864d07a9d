// Package config reads balance.toml (SPEC §2) into a Config that the rest of
// the program can trust: every default applied, every duration parsed, every
// per-service table merged over the global one.
//
// Why strict: a load balancer that guesses is an outage waiting for a typo.
// `wieght = 0` silently ignored would leave a backend in rotation that the
// operator meant to take out; `interval = "10"` read as zero would spin. So an
// unknown key, a wrong type, a bad duration or a value out of range is an
// error, and every error is reported at once, so that one run of
// `balance-l4 -check` lists everything to fix.
//
// Each problem is an *Error naming its key in indexed form, as the operator
// would point at it in the file, with the line where that key (or, for a
// missing key, its table) stands:
//
//	balance.toml:31: services[1].backends[0].weight: must be between 0 and 256, got 300
//	balance.toml:24: services[1].name: duplicate service name "web" (also services[0].name)
//	balance.toml:12: services[0].backends[1].colour: unknown key
//	balance.toml:9: services[0].listen: missing required key
//
// A duplicate is named where the second one stands. A TOML syntax error is a
// single Error with a line and no path.
//
// Merging: a service's [services.health_check] (with its passive_checks) and
// [services.resilience.circuit_breaker] / [services.resilience.retry] tables
// override the global tables key by key; a key the service leaves out keeps
// the global value, which itself defaults as in SPEC §2.
//
// Choices where SPEC §2 is silent:
//   - A service may have no backends (an empty pool during maintenance);
//     its clients are refused for want of an eligible backend.
//   - A listen address may use port 0 (the OS picks one, as tests do) and an
//     empty host (every interface); a backend needs a host and a port 1..65535.
//   - Listen addresses conflict when they could not both be bound: the same
//     host and port, or a wildcard host on the same port. admin.listen counts.
//   - Services share a listen address only to route TLS by server name
//     (edge.go): they write it the same way, with a fixed port; at most one
//     leaves sni out (the default route); accept_proxy is the same on all (the
//     PROXY header comes before the ClientHello); a name routes to one of them.
//     sni = [], allow = [] and deny = [] are the defaults written out.
//   - An allow/deny prefix with bits set beyond its mask is an error that
//     shows the masked one; ::ffff:a.b.c.d/n is taken as the IPv4 prefix. A
//     rate is COUNT/s, COUNT/m or COUNT/h with COUNT 1..1000000.
//   - Durations are never negative; interval, timeout, window,
//     circuit_breaker.timeout and timeouts.connect must also be above zero.
//   - Numbers where a float is expected may be written as integers
//     (multiplier = 2); min_requests is at least 1; health_check.path starts
//     with /; a backend name may not contain / (it is part of admin URLs).
//   - Parse never reads the environment; Load falls back to
//     $BALANCE_ADMIN_TOKEN when admin.token is empty, and to
//     $BALANCE_ADMIN_READ_TOKEN when admin.read_token is.
//   - admin.read_token needs admin.token and must differ from it: without a
//     full token every request has full access, and a read-only token would
//     restrict nothing.
//   - admin.tls_cert and admin.tls_key are read and parsed as a pair here
//     (relative paths from the working directory), so -check reports an
//     unreadable file, a file that is not PEM or a key of another
//     certificate; a pair that does not fit is reported at tls_cert.
//
// Typical use:
//
//	cfg, err := config.Load(path)
//	var errs config.Errors
//	if errors.As(err, &errs) {
//		for _, e := range errs {
//			fmt.Fprintln(os.Stderr, e) // one problem per line
//		}
//	}
package config
