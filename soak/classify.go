package soak

import (
	"fmt"
	"time"
)

type outcomeKind string

const (
	outcomeOK              outcomeKind = "ok"
	outcomeFault           outcomeKind = "broken by injected fault"
	outcomeBrokenOtherwise outcomeKind = "broken otherwise"
	outcomeRefused         outcomeKind = "refused while healthy"
	outcomeCorrupted       outcomeKind = "corrupted"
	outcomeTimeout         outcomeKind = "timeout"
)

type outcome struct {
	kind  outcomeKind
	fault FaultKind // for outcomeFault
}

// killGrace is how long after a kill a connection that never reached a
// backend's handler may still break because of it (the proxy had connected
// it to the killed backend's accept queue).
const killGrace = 2 * time.Second

// classify decides what broke a client connection:
//
//   - corrupted: a byte came back that was not sent (always counted, fault or not);
//   - broken by an injected fault: the backend it landed on marked it (reset
//     by a kill, held by a stall), or a fault on that backend (a disconnect,
//     a kill) overlaps the time from its landing to its break; a connection
//     that never reached a backend's handler counts here when a kill began
//     while it was open and it broke within killGrace of it;
//   - timeout: no progress for progressTimeout and no fault to blame;
//   - broken otherwise: it reached a backend no fault touched and still broke;
//   - refused while healthy: it never reached a backend (the dial failed or
//     the proxy closed it), while the anchor backend, which the chaos never
//     kills, stalls, drains, weighs to 0 or removes, was available.
func classify(a attempt, reg *Registry, faults *FaultLog) (outcome, string) {
	if a.err == nil {
		return outcome{kind: outcomeOK}, ""
	}
	l, landed := reg.Lookup(a.id)
	where := "never reached a backend"
	if landed {
		where = fmt.Sprintf("on backend %d since %s", l.Backend, l.At.Format("15:04:05.000"))
	}
	detail := fmt.Sprintf("client %d (%s) started %s, broke %s, %s, %d bytes echoed: %v",
		a.id, kindOfClient(a), a.started.Format("15:04:05.000"), a.broke.Format("15:04:05.000"), where, a.echoed, a.err)
	switch {
	case a.corrupted:
		return outcome{kind: outcomeCorrupted}, detail
	case landed && l.Fault != "":
		return outcome{kind: outcomeFault, fault: l.Fault}, detail
	case landed:
		if k, ok := faults.OnBackend(l.Backend, l.At, a.broke); ok {
			return outcome{kind: outcomeFault, fault: k}, detail
		}
	case faults.KillNear(a.started, a.broke, killGrace):
		return outcome{kind: outcomeFault, fault: FaultKilled}, detail
	}
	switch {
	case a.timeout:
		return outcome{kind: outcomeTimeout}, detail
	case landed:
		return outcome{kind: outcomeBrokenOtherwise}, detail
	}
	return outcome{kind: outcomeRefused}, detail
}

func kindOfClient(a attempt) string {
	if a.long {
		return "long-lived"
	}
	return "payload"
}
