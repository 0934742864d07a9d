package l4

import (
	"net"
	"strings"
	"testing"
)

// Options.Listen opens every service listener: it gets the configured
// address, and what it returns is what the service accepts on.
func TestOptionsListen(t *testing.T) {
	b := startBackend(t, sayName("b1"))
	var asked []string
	rt, _ := startRuntime(t, testConfig(testService("svc", be("b1", b.addr))), func(r *Runtime) {
		r.listen = func(network, addr string) (net.Listener, error) {
			asked = append(asked, network+" "+addr)
			return Listen(network, addr)
		}
	})
	if len(asked) != 1 || asked[0] != "tcp 127.0.0.1:0" {
		t.Fatalf("Listen asked for %q, want [tcp 127.0.0.1:0]", asked)
	}
	if got := readName(t, rt, "svc", 2); got != "b1" {
		t.Fatalf("served by %q", got)
	}

	// A listener that is not TCP is refused, naming the address.
	bad := NewRuntime(Options{Log: zerologDiscard(), Listen: func(string, string) (net.Listener, error) {
		return net.Listen("unix", t.TempDir()+"/sock")
	}})
	_, err := bad.Apply(testConfig(testService("svc", be("b1", b.addr))))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:0") || !strings.Contains(err.Error(), "not a TCP listener") {
		t.Fatalf("Apply with a unix listener: %v", err)
	}
}
