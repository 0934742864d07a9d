package peer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/backend"
)

// Backends is a backend child process (l4bench -serve-backend): its CPU is not
// the load generator's.
type Backends struct {
	Addrs backend.Addrs
	proc  *Process
}

// BackendArgs are the child-mode arguments that run echo and sink servers.
func BackendArgs(echo, sink int) []string {
	return []string{"-serve-backend", "-echo", strconv.Itoa(echo), "-sink", strconv.Itoa(sink)}
}

// StartBackends starts a backend child with echo and sink servers and reads the
// addresses it reports on its first line of output.
func StartBackends(ctx context.Context, spawn Spawner, dir, name string, echo, sink int) (*Backends, error) {
	cmd := spawn(BackendArgs(echo, sink)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting backends %s: %w", name, err)
	}
	proc, err := StartProcess(name, cmd, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	type line struct {
		s   string
		err error
	}
	first := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(out).ReadString('\n')
		first <- line{s, err}
	}()
	fail := func(err error) (*Backends, error) {
		_ = proc.Stop() // also ends the reader above, by closing the pipe
		<-first
		return nil, fmt.Errorf("starting backends %s: %w", name, err)
	}
	select {
	case l := <-first:
		if l.err != nil {
			return fail(fmt.Errorf("reading their addresses: %w: %s", l.err, proc.LogTail()))
		}
		var addrs backend.Addrs
		if err := json.Unmarshal([]byte(l.s), &addrs); err != nil {
			return fail(fmt.Errorf("parsing their addresses %q: %w", l.s, err))
		}
		if len(addrs.Echo) != echo || len(addrs.Sink) != sink {
			return fail(fmt.Errorf("got %d echo and %d sink addresses, want %d and %d", len(addrs.Echo), len(addrs.Sink), echo, sink))
		}
		return &Backends{Addrs: addrs, proc: proc}, nil
	case <-time.After(readyTimeout):
		return fail(fmt.Errorf("no addresses after %v", readyTimeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// PID is the backend process.
func (b *Backends) PID() int { return b.proc.PID() }

// Alive reports an error once the backend process has exited.
func (b *Backends) Alive() error { return b.proc.Alive() }

// Stop ends the backend process.
func (b *Backends) Stop() error { return b.proc.Stop() }
