package peer

import (
	"fmt"
	"os/exec"
	"strings"
)

// newGoProxy runs the obvious Go proxy (package goproxy) as a child process of
// this benchmark, so its CPU and memory are its own.
func newGoProxy(env Env) *procPeer {
	return newChildProxy(env, GoProxy, "-serve-goproxy",
		"the obvious Go proxy: accept loop, round robin, two io.Copy goroutines per connection with half-close (bench/internal/goproxy)")
}

// newGoEventLoop runs the event-loop Go proxy (package eventloop) as a child
// process of this benchmark.
func newGoEventLoop(env Env) *procPeer {
	return newChildProxy(env, GoEventLoop, "-serve-eventloop",
		"an epoll event-loop proxy in Go: one loop per processor on a locked thread, raw system calls, round robin, 16 KiB read/write copy with half-close, nothing else (bench/internal/eventloop)")
}

// newChildProxy runs one of the benchmark's own proxies, selected by its
// child mode, in front of the echo and sink backends.
func newChildProxy(env Env, name, mode, describe string) *procPeer {
	p := &procPeer{name: name, env: env, describe: describe}
	if env.Spawn == nil {
		p.absent = fmt.Errorf("%w: no way to spawn the benchmark binary", ErrAbsent)
		return p
	}
	p.command = func(_ string, fe Frontends) (*exec.Cmd, error) {
		args := GoProxyArgs(fe, env.Backends.Echo, env.Backends.Sink)
		args[0] = mode
		return env.Spawn(args...), nil
	}
	return p
}

// GoProxyArgs are the child-mode arguments that run the obvious Go proxy: a
// -route LISTEN=BACKEND,BACKEND per frontend.
func GoProxyArgs(fe Frontends, echo, sink []string) []string {
	return []string{
		"-serve-goproxy",
		"-route", fe.Echo + "=" + strings.Join(echo, ","),
		"-route", fe.Sink + "=" + strings.Join(sink, ","),
	}
}
