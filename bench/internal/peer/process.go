package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Spawner makes the command that runs this benchmark binary in a child mode
// (-serve-backend, -serve-goproxy) with args. Tests run their own binary instead.
type Spawner func(args ...string) *exec.Cmd

// stopGrace is how long a process gets to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Process is a started child in its own process group, so a stop reaches every
// worker it forked (nginx) and nothing else.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  string        // file holding its stdout and stderr
	done chan struct{} // closed once it has exited and been reaped
	err  error         // cmd.Wait's result, set before done closes
}

// StartProcess starts cmd with stderr, and stdout unless already set, going to
// logPath. The child dies with the benchmark (Pdeathsig) if nobody stops it.
func StartProcess(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	defer f.Close() // the child holds its own copy
	cmd.Stderr = f
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id, also its process group id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Alive reports an error, with the end of the process's log, once it has exited.
func (p *Process) Alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.LogTail())
	default:
		return nil
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after stopGrace.
func (p *Process) Stop() error {
	pgid := p.PID()
	select {
	case <-p.done:
	default:
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stopping %s: %w", p.name, err)
		}
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
	}
	// Whatever is left of the group (a worker that outlived its master) goes now.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// LogTail is the last lines of the process's log, for error messages.
func (p *Process) LogTail() string {
	f, err := os.Open(p.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const tail = 2048
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty log " + p.log + ")"
	}
	return s
}

// readyTimeout bounds the wait for a started peer to accept connections.
const readyTimeout = 15 * time.Second

// WaitListening waits until every addr accepts a TCP connection, or the process
// exits, or readyTimeout passes.
func WaitListening(ctx context.Context, p *Process, addrs ...string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	for _, addr := range addrs {
		for {
			if err := p.Alive(); err != nil {
				return err
			}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s to listen on %s: %w (last error: %v)", p.name, addr, ctx.Err(), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// FreePorts returns n distinct 127.0.0.1 addresses that were free a moment ago.
func FreePorts(n int) ([]string, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
