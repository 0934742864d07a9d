package soak

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// flipper answers health probes: "PONG" during even seconds since start and
// "NOPE" during odd ones, except that the third probe of every up second
// gets a lone "NOPE", a glitch the unhealthy threshold must absorb.
type flipper struct {
	mu       sync.Mutex
	start    time.Time
	flapping bool
	phase    int
	probes   int // in this phase
	downs    int // down phases that saw a probe
	glitches int
}

func (f *flipper) answer() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.flapping {
		return "PONG\r\n"
	}
	if p := int(time.Since(f.start) / time.Second); p != f.phase || f.probes == 0 {
		f.phase, f.probes = p, 0
		if p%2 == 1 {
			f.downs++
		}
	}
	f.probes++
	switch {
	case f.phase%2 == 1:
		return "NOPE\r\n"
	case f.probes == 3:
		f.glitches++
		return "NOPE\r\n"
	}
	return "PONG\r\n"
}

// handle serves a health probe ("PING\r\n", answered per the flipper) or
// echoes a client's lines.
func (f *flipper) handle(c *net.TCPConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	if line == "PING\r\n" {
		io.WriteString(c, f.answer())
		return
	}
	if _, err := io.WriteString(c, line); err != nil {
		return
	}
	io.Copy(c, r)
}

// TestFlappingBackendIsDamped: a backend whose health answer flips every
// second, with a lone failed probe in every healthy second. With interval
// 200ms and thresholds 2/3 the state follows the real flips (the events show
// each change) but not the glitches, and clients connecting all along see no
// error because another backend is healthy.
func TestFlappingBackendIsDamped(t *testing.T) {
	t.Parallel()
	flap := &flipper{start: time.Now(), flapping: true}
	steady := &flipper{}
	fs, ss := startServer(t, flap.handle), startServer(t, steady.handle)
	svc, admin := freePort(t), freePort(t)
	startBalance(t, fmt.Sprintf(`
[admin]
listen = %q
[log]
access_log = false
[health_check]
type = "tcp"
send = "PING\r\n"
expect = "PONG"
interval = "200ms"
timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 3
[[services]]
name = "flap"
listen = %q
[[services.backends]]
name = "flapping"
address = %q
[[services.backends]]
name = "steady"
address = %q
`, admin, svc, fs.Addr(), ss.Addr()), admin)
	a := NewAdminClient(admin, "")

	var attempts, failures int
	for end := time.Now().Add(6500 * time.Millisecond); time.Now().Before(end) && attempts < 1000; attempts++ {
		if err := dialRoundTrip(svc, fmt.Sprintf("hello %d", attempts)); err != nil {
			failures++
			if failures <= 5 {
				t.Errorf("client %d: %v", attempts, err)
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	if failures > 0 {
		t.Errorf("%d of %d clients failed while a healthy backend was available", failures, attempts)
	}

	toUnhealthy, toHealthy := 0, 0
	for _, e := range getBackend(t, a, "flap", "flapping").Events {
		switch {
		case e.From == "healthy" && e.To == "unhealthy":
			toUnhealthy++
		case e.From == "unhealthy" && e.To == "healthy":
			toHealthy++
		}
	}
	flap.mu.Lock()
	downs, glitches := flap.downs, flap.glitches
	flap.mu.Unlock()
	t.Logf("%d clients; %d down phases, %d glitches; events: %d to unhealthy, %d to healthy", attempts, downs, glitches, toUnhealthy, toHealthy)
	if toUnhealthy < 2 || toHealthy < 2 {
		t.Errorf("events show %d changes to unhealthy and %d to healthy over %d down phases; want at least 2 each", toUnhealthy, toHealthy, downs)
	}
	if glitches == 0 {
		t.Error("no glitch was served: the damping was not exercised")
	}
	if toUnhealthy > downs {
		t.Errorf("%d changes to unhealthy for %d down phases: the %d lone failed probes were not damped", toUnhealthy, downs, glitches)
	}
	for _, e := range getBackend(t, a, "flap", "steady").Events {
		if e.To == "unhealthy" {
			t.Errorf("the steady backend changed state: %+v", e)
		}
	}
}
