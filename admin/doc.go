// Package admin is balance-l4's operator interface: the JSON API of SPEC §4, the
// Prometheus metrics of SPEC §5 and the live htmx dashboard, served by Echo.
//
// It sees the running balancer only through the Controller interface and the
// plain views of package status, so it can be built and tested against a fake
// (package admintest) and never reaches into the data path: metrics are read
// from Controller.Services at scrape time, and the dashboard's sparklines come
// from a small ring buffer that a sampler goroutine fills every
// Options.SampleEvery. Nothing here runs per proxied connection.
//
// In a fleet (SPEC §6) the controller is also a FleetController: the server
// then serves GET /api/v1/fleet, routes ?scope=local changes to its *Local
// methods, answers 503 for errors wrapping status.ErrUnavailable, exports the
// balance_fleet_* metrics and shows the fleet on the dashboard. Outside a
// fleet none of that appears.
//
// Every route but /healthz is behind the token when one is set (Bearer, or HTTP
// Basic with the token as password so a browser prompts), state-changing
// requests from another site are refused (Sec-Fetch-Site / Origin), bodies are
// capped, and slow clients and slow handlers are timed out.
//
// Roles and TLS (SPEC §9): Options.ReadToken reads everything and changes
// nothing — any method but GET, HEAD and OPTIONS gets 403
// {"error": "read-only token"} before routing, and the dashboard renders no
// control for it. Every change is logged and handed to the controller with
// who asked (see actor: "api 10.0.0.7:51234 (token)"). With
// Options.Certificate the server is HTTPS only, and SetCertificate swaps the
// certificate for the next handshake without a restart.
//
// Middleware: Echo's Recover, Secure, BodyLimit and Gzip, configured to the
// SPEC; the token check, the cross-site check and the request time limit are
// our own, each saying why where it is defined.
//
// Typical use:
//
//	srv, err := admin.New(admin.Options{Listen: "127.0.0.1:9090", Token: tok, Log: log, Controller: ctrl})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... } // names the address and the OS error
//	defer srv.Shutdown(ctx)
package admin
