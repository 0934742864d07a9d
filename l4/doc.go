// Package l4 is balance-l4's data path and the runtime that owns services and
// backends.
//
// A Runtime holds one listener per address (a front, front.go): behind it one
// service, or services routed by the TLS server name the client asks for (the
// ClientHello is read, never terminated, and sent on first). A client is then
// screened, before any backend is chosen, by its service's allow/deny lists and
// per-client limits (edge.go, clients.go), matched to an eligible backend
// (balance picks, health and resilience decide who is eligible), connected
// with failover, and then spliced both ways: bytes move
// socket to socket through splice(2) on the raw *net.TCPConn pair, with
// half-close (a FIN on one side becomes shutdown(SHUT_WR) on the other) and
// reset propagation (an RST on one side becomes an RST on the other).
//
// Why the copy loop looks the way it does: Go's splice holds a pipe (two file
// descriptors) for as long as a copy call blocks, so a plain io.Copy costs six
// descriptors per idle proxied connection. Each direction here copies inside
// its source's raw-read callback (splice.go): small messages with read and
// write through a pooled buffer, three system calls per message; bulk data with
// splice through a pipe from a small pool of the runtime's (pipe.go). Neither
// is held while the source is empty, and the calls bypass the scheduler's
// syscall bookkeeping, since on non-blocking descriptors they never block
// (rawsys.go). A connection that falls idle parks both directions in an epoll
// instance of the runtime's own and gives back its goroutines (park.go): an
// idle connection costs its two sockets and a little heap, and goroutines are
// kept between connections for their grown stacks (workers.go). Backends at an
// IP address are connected with raw system calls (dial.go, through
// internal/rawconnect, which health's plain tcp checks share). Byte counters
// are updated after every write, so the live figures in the admin API move
// during long transfers.
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
