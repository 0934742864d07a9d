// Package fleet makes many balance-l4 instances act as one through etcd: the
// operator's drains and weights are kept in etcd and applied by every instance
// through a watch, and each instance publishes what it is and what it sees in a
// registry under a lease.
//
// etcd is the source of truth for operator state, and this package never lets
// an instance believe something etcd did not commit. The mirror it keeps is a
// per-key last-writer-wins register ordered by etcd's mod revision, so the
// answer to a write, a watch event and a full resynchronisation may arrive in
// any order and still settle on what etcd holds. A watch is never trusted to
// stay alive: leader loss, compaction, a closed channel or a stream that stops
// making progress all end in a full read and a diff.
//
// When etcd cannot be reached the instance keeps the state it last applied;
// writes are refused (or, asked for, applied here only and marked diverged).
// The package knows nothing of HTTP or TCP: the application hands it hooks to
// apply changes and to report this instance's figures.
package fleet
