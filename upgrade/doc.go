// Package upgrade replaces a running balance-l4 with a new binary without
// refusing or resetting a client connection (SPEC §8).
//
// The old process (the parent) starts the binary at its own path with the
// same arguments and hands it the listening sockets it names: every service's
// and the admin server's. They are inherited across fork and exec (the same
// socket, not a copy bound anew), so the kernel's accept queue is shared and
// no connection waiting in it is lost whichever process accepts it. Two pipes
// make the protocol:
//
//   - ready (child to parent): the new process writes one byte once it is
//     ready (configuration applied, state restored, listeners open). The
//     parent waits for that byte, for the child's exit, or for a timeout
//     (30 s by default), whichever comes first; without the byte the upgrade
//     failed and the parent stops the child and goes on as before.
//   - release (parent to child): the parent closes its end once it has let go
//     of what only one process may own (the state file, the fleet registry
//     entry). The child then takes them over; it also does so if the parent
//     dies.
//
// The sockets go as file descriptors 5 and up, with ready at 3 and release at
// 4, named in the environment variable BALANCE_L4_HANDOVER, which the child
// reads once at start (Inherit) and removes from its environment.
//
// Why not github.com/cloudflare/tableflip: its Fds keeps a duplicate of every
// listener it ever opened or inherited for the life of the process, with no way
// to drop one. A reload that removes a service (or moves its address) closes
// the service's listener, but the duplicate keeps the port bound and the kernel
// keeps completing handshakes nobody accepts: clients hang instead of being
// refused, and listening on that address again fails with "address already in
// use". Here the listeners to hand over are the ones open at the moment of the
// upgrade, and a child keeps no copy of what it inherited.
//
// This package knows nothing of l4 or the admin server: the application names
// its listeners and decides what ready means. It also writes PID files and
// speaks systemd's sd_notify protocol, the two ways a service manager follows
// the process through an upgrade.
package upgrade
