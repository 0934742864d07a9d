// Package l4 is balance-l4's data path and the runtime that owns services and
// backends.
//
// A Runtime holds one listener per service. Each accepted client connection is
// matched to an eligible backend (balance picks, health and resilience decide who
// is eligible), connected with failover, and then spliced both ways: bytes move
// socket to socket through splice(2) on the raw *net.TCPConn pair, with
// half-close (a FIN on one side becomes shutdown(SHUT_WR) on the other) and
// reset propagation (an RST on one side becomes an RST on the other).
//
// Why the copy loop looks the way it does: Go's splice holds a pipe (two file
// descriptors) for as long as a copy call blocks, so a plain io.Copy costs six
// descriptors per idle proxied connection. Each direction here splices inside
// its source's raw-read callback with a pipe from a small pool of the
// runtime's (pipe.go): per message that is splice in, splice out, and a splice
// that finds the source empty, gives the pipe back and waits, the same three
// system calls as io.Copy. A pipe is held only while bytes are in flight. And a connection that falls idle parks both
// directions in an epoll instance of the runtime's own and gives back its
// goroutines (park.go): an idle connection costs its two sockets and a little
// heap. Byte counters are updated after every splice, so the live figures in
// the admin API move during long transfers.
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
