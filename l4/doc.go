// Package l4 is balance-l4's data path and the runtime that owns services and
// backends.
//
// A Runtime holds one listener per address (a front, front.go): behind it one
// service, or services routed by the TLS server name the client asks for (the
// ClientHello is read, never terminated, and sent on first). The copy engine's
// loops accept the clients (accept.go). A client of a plain address is then
// screened, before any backend is chosen, by its service's allow/deny lists
// and per-client limits (edge.go, clients.go), matched to an eligible backend
// (balance picks, health and resilience decide who is eligible) and connected
// with failover (connect.go, dial.go, through internal/rawconnect, which
// health's plain tcp checks share), all on the loop that accepted it, as
// long as nothing must wait. A handshake still in flight is waited for by
// an engine loop too (engine.Connect), which carries on there; a retry's
// backoff or a backend named by host name hands the rest to a kept
// goroutine (workers.go), and so does a client that must be read first (a
// PROXY header, a ClientHello).
//
// Then the pair goes to the copy engine (package engine), which moves the
// bytes with half-close, reset propagation and the idle timeout, and tells
// the connection of its end (conn.go, serve.go). The runtime keeps what the
// engine does not know: the connection lists the operator acts on (drain
// timeouts, disconnects, close on unhealthy, shutdown all abort through the
// engine), the access log and the passive checks.
//
// The hot path takes no runtime-wide lock: backend counters and flags are
// atomics, and a service's backend set with its pickers sits behind an
// atomic.Pointer that is swapped on reload and weight changes.
//
// Typical use:
//
//	rt := l4.NewRuntime(l4.Options{Log: log})
//	if _, err := rt.Apply(cfg); err != nil {
//		return err // names the address that could not be opened
//	}
//	...
//	forced, err := rt.Shutdown(ctx) // stop accepting, let connections finish
package l4
