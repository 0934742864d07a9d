package l4

import "testing"

// TestOperatorActionsInHistory: weight changes and disconnects show in the
// backend's event history with who asked, next to drains.
func TestOperatorActionsInHistory(t *testing.T) {
	a := startBackend(t, sayName("a"))
	rt, _ := startRuntime(t, testConfig(testService("s", be("a", a.addr))))
	if _, err := rt.SetWeight("s", "a", 5, "api 127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.SetWeight("s", "a", 5, "api 127.0.0.1:1"); err != nil { // idempotent: no second event
		t.Fatal(err)
	}
	if _, err := rt.Disconnect("s", "a", "dashboard 127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Drain("s", "a", "api 127.0.0.1:3"); err != nil {
		t.Fatal(err)
	}
	ev := backendView(t, rt, "s", "a").Events
	if len(ev) != 3 {
		t.Fatalf("events %+v, want drain, disconnect, weight (newest first)", ev)
	}
	if ev[0].To != "draining" || ev[1].To != "disconnected" || ev[1].Reason != "0 connections closed by dashboard 127.0.0.1:2" ||
		ev[2].From != "file weight" || ev[2].To != "weight 5" || ev[2].Reason != "set by api 127.0.0.1:1" {
		t.Fatalf("events %+v", ev)
	}
}
