package soak

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestClassify walks the classification rules with a hand-made journal.
func TestClassify(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	reg := NewRegistry()
	faults := NewFaultLog()
	// Backend 1 is disconnected at 1000-1010 ms, backend 2 killed at 5000 ms.
	faults.End(faults.Begin(1, FaultDisconnected, at(1000)), at(1010))
	faults.End(faults.Begin(2, FaultKilled, at(5000)), at(5001))
	// In a fleet: backend 3 is disconnected through instance 1 at 2000-2010 ms.
	faults.End(faults.BeginOn(1, 3, FaultDisconnected, at(2000)), at(2010))
	reg.land(10, Landing{Backend: 1, At: at(900)})
	reg.land(11, Landing{Backend: 0, At: at(900)})
	reg.land(12, Landing{Backend: 3, At: at(100), Fault: FaultStalled})
	reg.land(13, Landing{Backend: 1, At: at(1500)})
	reg.land(14, Landing{Backend: 0, At: at(100)})
	reg.land(15, Landing{Backend: 1, At: at(900)})
	reg.land(16, Landing{Backend: 3, At: at(1900)})
	reg.land(17, Landing{Backend: 3, At: at(1900)})

	broken := errors.New("connection reset by peer")
	timeout := os.ErrDeadlineExceeded
	cases := []struct {
		name string
		a    attempt
		want outcome
	}{
		{"ok", attempt{id: 10}, outcome{kind: outcomeOK}},
		{"corrupted beats a fault", attempt{id: 10, started: at(800), corrupted: true}.failAt(broken, at(1005)), outcome{kind: outcomeCorrupted}},
		{"disconnected on its backend", attempt{id: 10, started: at(800)}.failAt(broken, at(1005)), outcome{kind: outcomeFault, fault: FaultDisconnected}},
		{"a disconnect on another backend", attempt{id: 11, started: at(800)}.failAt(broken, at(1005)), outcome{kind: outcomeBrokenOtherwise}},
		{"stalled, marked by the backend", attempt{id: 12, started: at(50)}.failAt(timeout, at(8100)), outcome{kind: outcomeFault, fault: FaultStalled}},
		{"opened after the disconnect", attempt{id: 13, started: at(1400)}.failAt(broken, at(1600)), outcome{kind: outcomeBrokenOtherwise}},
		{"broke long after the disconnect", attempt{id: 15, started: at(800)}.failAt(broken, at(1010).Add(faultGrace+time.Millisecond)), outcome{kind: outcomeBrokenOtherwise}},
		{"timeout, no fault", attempt{id: 14, started: at(50)}.failAt(timeout, at(8100)), outcome{kind: outcomeTimeout}},
		{"never landed, kill under way", attempt{id: 20, started: at(4990)}.failAt(broken, at(5003)), outcome{kind: outcomeFault, fault: FaultKilled}},
		{"never landed, no fault", attempt{id: 21, started: at(3000)}.failAt(broken, at(3010)), outcome{kind: outcomeRefused}},
		{"never landed, timed out", attempt{id: 22, started: at(3000)}.failAt(timeout, at(11000)), outcome{kind: outcomeTimeout}},
		{"disconnected through its instance", attempt{id: 16, instance: 1, started: at(1800)}.failAt(broken, at(2005)), outcome{kind: outcomeFault, fault: FaultDisconnected}},
		{"a disconnect through another instance", attempt{id: 17, instance: 2, started: at(1800)}.failAt(broken, at(2005)), outcome{kind: outcomeBrokenOtherwise}},
		{"a kill reaches every instance", attempt{id: 23, instance: 2, started: at(4990)}.failAt(broken, at(5003)), outcome{kind: outcomeFault, fault: FaultKilled}},
		{"never landed, a disconnect through another instance", attempt{id: 24, instance: 0, started: at(1990)}.failAt(broken, at(2003)), outcome{kind: outcomeRefused}},
	}
	for _, c := range cases {
		got, detail := classify(c.a, reg, faults)
		if got != c.want {
			t.Errorf("%s: %+v, want %+v (%s)", c.name, got, c.want, detail)
		}
	}
}

func (a attempt) failAt(err error, at time.Time) attempt {
	a = a.fail(err)
	a.broke = at
	return a
}

// TestEchoBackendFaults checks the backend's own bookkeeping: a kill resets
// and marks the clients on it and refuses new ones until Restart; a stall
// holds new clients, marked, until Unstall resets them.
func TestEchoBackendFaults(t *testing.T) {
	reg := NewRegistry()
	b, err := StartEchoBackend(7, "127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	connect := func(id uint64) *net.TCPConn {
		t.Helper()
		c, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(appendHeader(nil, id)); err != nil {
			t.Fatal(err)
		}
		return c.(*net.TCPConn)
	}
	landed := func(id uint64) Landing {
		t.Helper()
		for range 200 { // the backend registers after reading the header
			if l, ok := reg.Lookup(id); ok {
				return l
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("client %d never landed", id)
		return Landing{}
	}

	c1 := connect(1)
	defer c1.Close()
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(c1, hdr); err != nil {
		t.Fatalf("echo of the header: %v", err)
	}
	if l := landed(1); l.Backend != 7 || l.Fault != "" {
		t.Fatalf("landing %+v", l)
	}
	if n := b.Kill(); n != 1 {
		t.Errorf("Kill reset %d connections, want 1", n)
	}
	if _, err := c1.Read(hdr); err == nil {
		t.Error("a killed backend's connection still reads")
	}
	if l := landed(1); l.Fault != FaultKilled {
		t.Errorf("after Kill the landing is %+v, want killed", l)
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("a killed backend accepts")
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}

	b.Stall()
	c2 := connect(2)
	defer c2.Close()
	if l := landed(2); l.Fault != FaultStalled {
		t.Errorf("landing on a stalled backend %+v, want stalled", l)
	}
	c2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c2.Read(hdr); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a stalled backend answered: %v", err)
	}
	if held := b.Unstall(); held != 1 {
		t.Errorf("Unstall released %d connections, want 1", held)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(hdr); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a released stalled connection: %v, want a reset", err)
	}

	c3 := connect(3)
	defer c3.Close()
	if _, err := io.ReadFull(c3, hdr); err != nil {
		t.Fatalf("after Unstall the backend does not echo: %v", err)
	}
}
