package soak

import "fmt"

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

// classify decides what broke a client connection:
//
//   - corrupted: a byte came back that was not sent (always counted, fault or not);
//   - broken by an injected fault: the backend it landed on marked it (reset
//     by a kill, held by a stall), or a fault on that backend (a disconnect, a
//     kill) ended after the connection was opened and began at most faultGrace
//     before it broke (in a fleet a disconnect counts only for connections
//     through the instance that answered it, as it acts on that instance's
//     connections alone); a connection that never reached a backend's handler
//     (the header was still in flight, or in a killed backend's accept queue)
//     counts here when a fault on any backend fits the same window;
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
	detail := fmt.Sprintf("client %d (%s, instance %d) started %s, broke %s, %s, %d bytes echoed: %v; %s",
		a.id, kindOfClient(a), a.instance, a.started.Format("15:04:05.000"), a.broke.Format("15:04:05.000"), where, a.echoed, a.err,
		faults.Near(a.started, a.broke))
	switch {
	case a.corrupted:
		return outcome{kind: outcomeCorrupted}, detail
	case landed && l.Fault != "":
		return outcome{kind: outcomeFault, fault: l.Fault}, detail
	case landed:
		if k, ok := faults.Blame(a.instance, l.Backend, a.started, a.broke); ok {
			return outcome{kind: outcomeFault, fault: k}, detail
		}
	default:
		if k, ok := faults.Blame(a.instance, -1, a.started, a.broke); ok {
			return outcome{kind: outcomeFault, fault: k}, detail
		}
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
