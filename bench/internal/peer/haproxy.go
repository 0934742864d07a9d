package peer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// newHAProxy runs HAProxy in mode tcp with the given number of threads, forcing
// splice both ways: in HAProxy 2.6 splice-auto barely splices, and forcing it
// doubles bulk throughput (BENCH.md).
func newHAProxy(env Env, threads int) *procPeer {
	name := HAProxy1
	if threads == 2 {
		name = HAProxy2
	}
	p := &procPeer{
		name:     name,
		env:      env,
		describe: fmt.Sprintf("HAProxy mode tcp, nbthread %d, option splice-request/splice-response, tune.pipesize 1048576, maxconn 9500, maxpipes 400 (to fit 9 000 connections in 20 000 fds)", threads),
	}
	bin, err := lookPath(env.HAProxy, "haproxy")
	if err != nil {
		p.absent = err
		return p
	}
	if v, err := exec.Command(bin, "-v").Output(); err == nil {
		p.describe = firstLine(string(v)) + "; " + p.describe
	}
	p.command = func(dir string, fe Frontends) (*exec.Cmd, error) {
		cfg := filepath.Join(dir, name+".cfg")
		if err := os.WriteFile(cfg, []byte(HAProxyConfig(threads, fe, env.Backends.Echo, env.Backends.Sink)), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", cfg, err)
		}
		// -db: stay in the foreground, no daemon, no master process.
		return exec.Command(bin, "-db", "-f", cfg), nil
	}
	return p
}

// HAProxyConfig is the configuration of the HAProxy peer.
func HAProxyConfig(threads int, fe Frontends, echo, sink []string) string {
	var b strings.Builder
	// Under 20 000 fds HAProxy derives maxconn of about 8 000, because it also
	// reserves 2 fds for each of maxpipes = maxconn/4 splice pipes, and refuses
	// part of the 9 000-connection idle load. A pipe is only held while data is in
	// flight (8 for the throughput load), so 400 pipes leave room for 9 500
	// connections within the same fd limit every peer has.
	fmt.Fprintf(&b, `global
    nbthread %d
    maxconn 9500
    maxpipes 400
    tune.pipesize 1048576

defaults
    mode tcp
    option splice-request
    option splice-response
    timeout connect 5s
    timeout client 1h
    timeout server 1h
`, threads)
	for _, svc := range []struct {
		name     string
		listen   string
		backends []string
	}{{"echo", fe.Echo, echo}, {"sink", fe.Sink, sink}} {
		fmt.Fprintf(&b, "\nfrontend %s\n    bind %s\n    default_backend %s_servers\n", svc.name, svc.listen, svc.name)
		fmt.Fprintf(&b, "\nbackend %s_servers\n    balance roundrobin\n", svc.name)
		for i, addr := range svc.backends {
			fmt.Fprintf(&b, "    server %s%d %s\n", svc.name, i, addr)
		}
	}
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
