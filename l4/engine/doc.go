// Package engine is balance-l4's copy engine: it moves the bytes of proxied
// TCP connections between two sockets, and nothing else. It knows nothing of
// services, backends or configuration; the runtime (package l4) accepts a
// client, connects a backend and hands the engine the connected pair with an
// Owner to tell of the end. A backend's handshake that takes a round trip
// is waited for by a loop too (Connect), so the runtime keeps no goroutine
// or timer for it.
//
// Why it exists: Go's netpoller wakes a goroutine per ready socket, and a
// goroutine per busy direction costs a stack, scheduler hand-offs and
// sysmon's wake-ups that HAProxy and nginx do not pay. Here each event loop
// waits on an epoll instance of its own and serves every connection it owns
// on its one goroutine, with raw system calls. The loops accept too
// (Listen): a client is accepted, and handed to its Acceptor, on the loop
// that epoll woke, so a client whose backend connects at once (loopback)
// is accepted, connected and spliced without waking any goroutine.
//
// # How a connection moves
//
// Both sockets are registered once, edge-triggered, for input, output and
// the peer's FIN (EPOLLRDHUP), and stay registered until they are closed. A
// backend socket a loop waited on for its handshake is registered already:
// Start, given the wait's handle, modifies its registration instead.
// A flow (client to backend, backend to client) reads its source into the
// loop's one shared buffer and writes that to its destination at once: two
// system calls per message. A read shorter than the buffer says the socket
// is empty, since new bytes make a new edge; when epoll reported the peer's
// FIN with the bytes, that short read is the end, and no read follows to
// find it. When the destination takes
// less than was read, the shared buffer becomes the flow's, holding the
// rest, and the loop takes another: a connection holds a buffer only while
// a slow reader keeps bytes waiting. A read that fills the buffer says bulk
// data is flowing: the flow switches to splice(2) through a pipe from the
// loop's pool, held only while bytes are in it, until a wake-up moves less
// than a buffer's worth. A FIN read on one side becomes shutdown(SHUT_WR) on
// the other; the connection closes when both sides have sent theirs. An
// error on a socket resets both (SO_LINGER 0, then close).
//
// Idle timeouts sit in a hashed timer wheel per loop, one entry per
// connection, checked lazily: the entry fires at the deadline it was set
// for and re-arms if bytes moved since. A connection whose bytes wait in the
// kernel for a slow reader is not idle while the kernel's counters move.
// Connect timeouts are a deadline per wait, which the loop's sleep honours;
// a loop scans its few waits only when the earliest is due.
//
// # Invariants
//
//   - A slot (a record in the loop's table) belongs to the loop from its
//     publication by Start to its release in close. Records hold no Go
//     pointers; epoll data carries the slot's index, the side and the
//     slot's generation, never a pointer, so an event for a connection that
//     ended (the generation moved on) is dropped.
//   - A slot's word holds the generation and two flags: published (Start
//     filled the slot in) and claimed (its end is decided). Exactly one
//     compare-and-swap claims the end: the loop's (a FIN pair, an error, the
//     idle timeout) or an Abort's, whose command then closes it on the loop.
//   - A connect wait belongs to its loop from the Connect command on; it
//     ends once, on the loop, when the handshake is over, fails, times out
//     or is canceled, and then ConnectWaiter hears of it. On success the
//     socket is the caller's again, registered with that loop, and Start
//     with the wait's handle (Pair.Via) puts the pair on that loop.
//     The owner hears Ended once, on the loop's goroutine, after both
//     sockets are closed and the slot is free.
//   - Only the loop touches a slot's loop state, its buffers, pipes and
//     timers. Other goroutines touch a loop only through Start (a free slot,
//     taken under the loop's mutex), Abort, Connect, Cancel, Listen and
//     Listener.Close (commands, and the listener table under the mutex) and
//     Stats (atomics).
//   - Bytes are counted when the destination took them, into the slot and
//     into the owner's live totals; a PROXY header sent first is not
//     counted.
//   - A loop sleeps only with no commands waiting, in epoll_wait with the
//     timer wheel's next deadline, the one call that goes through the
//     scheduler; a command posted while it sleeps wakes it through an
//     eventfd. Every call on a connection's sockets and pipes is raw (none
//     can block); the rare others (TCP_INFO when an idle entry expires or a
//     connect wait hears of its socket, opening and sizing a pipe) go
//     through x/sys as usual.
//   - Callbacks (Owner.Ended, ConnectWaiter, Acceptor) run on a loop and
//     must not block or wait for a loop; Listener.Close waits for every loop
//     and must not be called from one.
package engine
