// Package discovery finds backends while balance-l4 runs: from DNS (SRV
// records, or A/AAAA records for host:port) and, through the fleet's etcd
// watch, from members that register themselves.
//
// What it finds is applied only through rules that keep a pool from being
// emptied by a bad answer: a failed lookup changes nothing, and a backend
// missing from good answers (NXDOMAIN and empty ones included) is removed only
// after it has been missing for the source's hold. The package knows nothing
// of the data path; it hands each new set to a callback.
package discovery
