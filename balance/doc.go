// Package balance chooses the backend that a new client connection goes to.
//
// It holds the four algorithms of SPEC §3 behind one small interface, so the data
// path never branches on the algorithm: the caller builds a Picker once per
// membership (start, reload, operator weight change) and calls Pick for every
// connection attempt. Pick runs for every accepted connection, so it allocates
// nothing, takes no lock (except round_robin's one short mutex, which guards the
// only shared mutable state an algorithm has) and asks each Member only cheap
// questions, answered by atomic loads.
//
// The package knows nothing of configuration files, health checks or sockets:
// whether a backend may take a connection, and with what weight, is decided
// elsewhere and arrives through the Member interface.
//
// Typical use:
//
//	picker, err := balance.New(balance.LeastConnections, members, nil)
//	if err != nil {
//		return fmt.Errorf("building picker for %s: %w", service, err)
//	}
//	var tried balance.Tried
//	for attempt := 0; attempt < maxAttempts; attempt++ {
//		i := picker.Pick(clientIP, &tried)
//		if i < 0 {
//			break // no eligible member left that was not tried already
//		}
//		tried.Add(i)
//		if conn, err := dial(members[i]); err == nil {
//			return conn, nil
//		}
//	}
package balance
