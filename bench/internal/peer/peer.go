// Package peer starts the proxies the benchmark compares, each as a process with a
// generated configuration on free 127.0.0.1 ports, in front of the same backends:
// direct (no proxy, the limit), balance-l4, HAProxy with one and two threads,
// nginx stream, and the obvious Go proxy. A peer whose software is not installed
// is reported absent, not failed.
//
// Every peer exposes two frontends, one for the echo backends and one for the
// sinks, and the pid whose process group /proc is read for its cost.
//
// Typical use:
//
//	p, _ := peer.New("haproxy-2t", env)
//	if err := p.Absent(); err != nil { /* report "absent" */ }
//	if err := p.Start(ctx); err != nil { ... }
//	defer p.Stop()
//	load.PingPong(ctx, p.Frontends().Echo, 32, 5*time.Second)
package peer

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/balancel4/balance-l4/bench/internal/backend"
)

// Peer names, in the order the report shows them.
const (
	Direct    = "direct"
	BalanceL4 = "balance-l4"
	HAProxy1  = "haproxy-1t"
	HAProxy2  = "haproxy-2t"
	Nginx     = "nginx"
	GoProxy   = "go-proxy"
	// BalanceL4B is a second balance-l4 binary (-balance-l4-b), for an A/B
	// comparison of two builds in one run; not in the default set.
	BalanceL4B = "balance-l4-b"
	// GoEventLoop is an epoll event-loop proxy in Go (package eventloop):
	// what Go can do without its netpoller; not in the default set.
	GoEventLoop = "go-eventloop"
	DefaultSet  = Direct + "," + BalanceL4 + "," + HAProxy1 + "," + HAProxy2 + "," + Nginx + "," + GoProxy
)

// Names lists every peer in report order.
var Names = []string{Direct, BalanceL4, BalanceL4B, HAProxy1, HAProxy2, Nginx, GoProxy, GoEventLoop}

// ErrAbsent marks a peer that cannot run on this machine.
var ErrAbsent = errors.New("peer: absent")

// Frontends are the addresses a peer serves: one proxies to the echo backends,
// one to the sinks.
type Frontends struct {
	Echo string
	Sink string
}

// Peer is one way of reaching the backends.
type Peer interface {
	Name() string
	// Absent says why the peer cannot run here (wrapping ErrAbsent), or nil.
	Absent() error
	// Start launches the peer with a fresh configuration and waits until it accepts.
	Start(ctx context.Context) error
	// Alive reports an error once a started peer's process has exited.
	Alive() error
	// Stop ends the peer; a stopped peer can be started again.
	Stop() error
	// Frontends are valid between Start and Stop.
	Frontends() Frontends
	// PID is the process whose group /proc is read for the peer's cost; 0 for direct.
	PID() int
	// Describe says how the peer is configured, for the report.
	Describe() string
}

// Env is what peers are started with.
type Env struct {
	Dir        string        // scratch directory for configurations and logs
	Spawn      Spawner       // runs this benchmark binary in a child mode
	BalanceL4  string        // path of the built balance-l4 binary, "" if it was not built
	BuildErr   error         // why balance-l4 was not built
	BalanceL4B string        // path of a second balance-l4 binary to compare, "" if none
	HAProxy    string        // path of haproxy, "" to look it up
	Nginx      string        // path of nginx, "" to look it up
	Backends   backend.Addrs // the backends every peer proxies to
}

// New returns the named peer.
func New(name string, env Env) (Peer, error) {
	if len(env.Backends.Echo) == 0 || len(env.Backends.Sink) == 0 {
		return nil, fmt.Errorf("making peer %s: need echo and sink backends", name)
	}
	switch name {
	case Direct:
		return direct{env.Backends}, nil
	case BalanceL4:
		return newBalanceL4(env), nil
	case BalanceL4B:
		return newBalanceL4B(env), nil
	case HAProxy1:
		return newHAProxy(env, 1), nil
	case HAProxy2:
		return newHAProxy(env, 2), nil
	case Nginx:
		return newNginx(env), nil
	case GoProxy:
		return newGoProxy(env), nil
	case GoEventLoop:
		return newGoEventLoop(env), nil
	default:
		return nil, fmt.Errorf("making peer %q: unknown (want one of %v)", name, Names)
	}
}

// direct reaches the first echo and sink backend with no proxy between.
type direct struct{ be backend.Addrs }

func (d direct) Name() string                { return Direct }
func (d direct) Absent() error               { return nil }
func (d direct) Start(context.Context) error { return nil }
func (d direct) Alive() error                { return nil }
func (d direct) Stop() error                 { return nil }
func (d direct) PID() int                    { return 0 }
func (d direct) Describe() string            { return "no proxy: the load generator talks to the first backend" }
func (d direct) Frontends() Frontends {
	return Frontends{Echo: d.be.Echo[0], Sink: d.be.Sink[0]}
}

// procPeer is a peer run as a process from a generated configuration.
type procPeer struct {
	name     string
	env      Env
	absent   error
	describe string
	// command writes the configuration for fe into dir and returns the command to run.
	command func(dir string, fe Frontends) (*exec.Cmd, error)
	fe      Frontends
	proc    *Process
}

var _ Peer = (*procPeer)(nil)
var _ Peer = direct{}

func (p *procPeer) Name() string         { return p.name }
func (p *procPeer) Absent() error        { return p.absent }
func (p *procPeer) Frontends() Frontends { return p.fe }
func (p *procPeer) Describe() string     { return p.describe }

func (p *procPeer) PID() int {
	if p.proc == nil {
		return 0
	}
	return p.proc.PID()
}

func (p *procPeer) Start(ctx context.Context) error {
	if p.absent != nil {
		return p.absent
	}
	if p.proc != nil {
		return fmt.Errorf("starting %s: already running", p.name)
	}
	ports, err := FreePorts(2)
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	fe := Frontends{Echo: ports[0], Sink: ports[1]}
	cmd, err := p.command(p.env.Dir, fe)
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	proc, err := StartProcess(p.name, cmd, filepath.Join(p.env.Dir, p.name+".log"))
	if err != nil {
		return err
	}
	if err := WaitListening(ctx, proc, fe.Echo, fe.Sink); err != nil {
		_ = proc.Stop()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	p.fe, p.proc = fe, proc
	return nil
}

func (p *procPeer) Alive() error {
	if p.proc == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.proc.Alive()
}

func (p *procPeer) Stop() error {
	if p.proc == nil {
		return nil
	}
	err := p.proc.Stop()
	p.proc, p.fe = nil, Frontends{}
	return err
}

// lookPath finds a peer's binary: the configured path, else PATH and /usr/sbin.
func lookPath(configured, name string) (string, error) {
	if configured != "" {
		if _, err := exec.LookPath(configured); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrAbsent, name, err)
		}
		return configured, nil
	}
	for _, candidate := range []string{name, "/usr/sbin/" + name, "/usr/local/sbin/" + name} {
		if p, err := exec.LookPath(candidate); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s is not installed (bench/run.sh --install installs it)", ErrAbsent, name)
}
