package admintest

import (
	"errors"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/status"
)

func TestOutsideAFleet(t *testing.T) {
	c := newTest(t)
	if _, ok := c.Fleet(); ok {
		t.Fatal("Fleet ok before SetFleet")
	}
	if err := c.UpdateFleet(func(*status.Fleet) {}); !errors.Is(err, ErrNotInFleet) {
		t.Fatalf("UpdateFleet = %v", err)
	}
	b, err := c.DrainLocal("s", "b", "x")
	if err != nil || b.State != "draining" || b.Fleet != nil || b.Diverged != nil {
		t.Fatalf("DrainLocal outside a fleet = %+v, %v", b, err)
	}
}

func TestFleet(t *testing.T) {
	c := newTest(t)
	err := c.AddService(status.Service{Name: "t", Backends: []status.Backend{{Name: "x", Address: "10.0.0.2:1", Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	in := &status.Fleet{
		Name: "f", Self: "me", Connected: true, Revision: 10, OperatorRevision: 8,
		Instances: []status.Instance{
			{ID: "me", AppliedRevision: 10},
			{ID: "peer", AppliedRevision: 11, Backends: []status.InstanceBackend{
				{Service: "s", Backend: "b", State: "healthy", ActiveConnections: 4},
				{Service: "t", Backend: "x", State: "draining"},
			}},
			{ID: "late", AppliedRevision: 5, Backends: []status.InstanceBackend{{Service: "s", Backend: "b", State: "healthy"}}},
		},
	}
	c.SetFleet(in)
	in.Instances[1].Backends[0].State = "changed" // SetFleet copies
	f, ok := c.Fleet()
	if !ok || f.Name != "f" || len(f.Instances) != 3 || f.Instances[1].Backends[0].State != "healthy" {
		t.Fatalf("Fleet = %+v, %v", f, ok)
	}
	f.Instances[1].ID = "changed" // Fleet copies
	if f, _ := c.Fleet(); f.Instances[1].ID != "peer" {
		t.Fatal("Fleet shares memory with the fake")
	}

	b, _ := c.Backend("s", "b")
	if b.Fleet == nil || *b.Fleet != (status.BackendFleet{Instances: 3, ActiveConnections: 4}) || b.Diverged == nil || *b.Diverged {
		t.Fatalf("s/b fleet %+v diverged %v", b.Fleet, b.Diverged)
	}
	x, _ := c.Backend("t", "x")
	if *x.Fleet != (status.BackendFleet{Instances: 2, Draining: 1}) {
		t.Fatalf("t/x fleet %+v", x.Fleet)
	}

	// A fleet-wide drain: a new revision, applied here and by peer, not by late.
	b, err = c.Drain("s", "b", "x")
	if err != nil {
		t.Fatal(err)
	}
	if *b.Fleet != (status.BackendFleet{Instances: 3, Draining: 2, ActiveConnections: 4}) {
		t.Fatalf("after a fleet drain: %+v", b.Fleet)
	}
	f, _ = c.Fleet()
	if f.Revision != 12 || f.OperatorRevision != 12 || f.Instances[0].AppliedRevision != 12 ||
		f.Instances[1].AppliedRevision != 12 || f.Instances[2].AppliedRevision != 5 {
		t.Fatalf("revisions after a fleet drain: %+v", f)
	}

	// Unreachable: fleet-wide changes are refused, local ones diverge.
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := c.UpdateFleet(func(f *status.Fleet) {
		f.Connected, f.DisconnectedSince, f.LastError = false, &since, "context deadline exceeded"
	}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []func() (status.Backend, error){
		func() (status.Backend, error) { return c.Undrain("s", "b", "x") },
		func() (status.Backend, error) { return c.Drain("s", "b", "x") },
		func() (status.Backend, error) { return c.SetWeight("s", "b", 3, "x") },
	} {
		_, err := op()
		if !errors.Is(err, status.ErrUnavailable) || err.Error() != "fleet store unreachable: context deadline exceeded" {
			t.Fatalf("fleet-wide change while unreachable: %v", err)
		}
	}
	if _, err := c.Drain("s", "nope", "x"); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("unknown backend while unreachable: %v", err)
	}
	b, err = c.SetWeightLocal("s", "b", 3, "x")
	if err != nil || b.Weight != 3 || !*b.Diverged {
		t.Fatalf("SetWeightLocal = %+v, %v", b, err)
	}
	if _, err := c.SetWeightLocal("s", "b", 300, "x"); !errors.Is(err, status.ErrInvalid) {
		t.Fatalf("SetWeightLocal 300: %v", err)
	}
	b, _ = c.UndrainLocal("s", "b", "x")
	if b.State != "healthy" || !*b.Diverged || b.Fleet.Draining != 1 {
		t.Fatalf("UndrainLocal: state %q diverged %v fleet %+v", b.State, *b.Diverged, b.Fleet)
	}
	if f, _ := c.Fleet(); f.Revision != 12 {
		t.Fatalf("a local change made a revision: %d", f.Revision)
	}

	// Back: the next fleet-wide change ends the divergence.
	if err := c.UpdateFleet(func(f *status.Fleet) { f.Connected, f.DisconnectedSince = true, nil }); err != nil {
		t.Fatal(err)
	}
	b, err = c.Undrain("s", "b", "x")
	if err != nil || *b.Diverged || b.Fleet.Draining != 0 {
		t.Fatalf("fleet undrain: %+v, %v", b, err)
	}
	var methods []string
	for _, call := range c.Calls() {
		methods = append(methods, call.Method)
	}
	if got := len(methods); got != 4 || methods[0] != "Drain" || methods[1] != "SetWeightLocal" || methods[2] != "UndrainLocal" || methods[3] != "Undrain" {
		t.Fatalf("calls = %v", methods)
	}

	c.SetFleet(nil)
	if b, _ := c.Backend("s", "b"); b.Fleet != nil || b.Diverged != nil {
		t.Fatal("fleet fields after leaving the fleet")
	}
}
