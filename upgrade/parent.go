package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// envHandover names, in the new process's environment, the parent and the
// sockets it was given.
const envHandover = "BALANCE_L4_HANDOVER"

// File descriptors in the new process.
const (
	fdReady     = 3
	fdRelease   = 4
	fdListeners = 5
)

// handoverEnv is the JSON value of BALANCE_L4_HANDOVER. Listeners[i] is the
// name of the socket at file descriptor 5+i.
type handoverEnv struct {
	Parent    int      `json:"parent"`
	Listeners []string `json:"listeners"`
}

// Listener is one listening socket to hand over: the name the new process
// asks for it by, and the socket (a *net.TCPListener).
type Listener struct {
	Name string
	Conn syscall.Conn
}

// Options configure Start.
type Options struct {
	Path      string   // the binary: absolute, or relative to Dir
	Args      []string // its arguments, without argv[0]
	Dir       string   // its working directory; "" = this process's
	Env       []string // its environment; nil = this process's
	Listeners []Listener
}

// ErrTimeout is wrapped by WaitReady's error when the new process was not
// ready in time.
var ErrTimeout = errors.New("not ready in time")

// Child is a new process started by Start.
type Child struct {
	Pid int

	proc     *os.Process
	readyR   *os.File // the parent's end of the ready pipe
	releaseW *os.File // the parent's end of the release pipe
	ready    chan struct{}
	exited   chan struct{}
	state    *os.ProcessState // set before exited is closed
	waitErr  error
	once     sync.Once
}

// Start starts the binary with the listeners and returns at once; WaitReady
// waits for it. The listeners stay open and serving here: the new process
// gets the same sockets, not copies bound anew. An error means nothing was
// started (missing or non-executable binary).
func Start(o Options) (*Child, error) {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	he := handoverEnv{Parent: os.Getpid()}
	var dups []int
	defer func() {
		for _, fd := range dups {
			unix.Close(fd)
		}
	}()
	for _, l := range o.Listeners {
		fd, err := dupSocket(l.Conn)
		if err != nil {
			return nil, fmt.Errorf("handing over %s: %w", l.Name, err)
		}
		dups = append(dups, fd)
		he.Listeners = append(he.Listeners, l.Name)
	}
	value, err := json.Marshal(he)
	if err != nil {
		return nil, err
	}
	env = append(withoutVar(env, envHandover), envHandover+"="+string(value))

	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	releaseR, releaseW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		readyW.Close()
		return nil, err
	}
	// Fd puts the child's ends in blocking mode; the child makes them
	// non-blocking again. The parent's ends are untouched.
	files := []uintptr{0, 1, 2, readyW.Fd(), releaseR.Fd()}
	for _, fd := range dups {
		files = append(files, uintptr(fd))
	}
	pid, _, err := syscall.StartProcess(o.Path, append([]string{o.Path}, o.Args...), &syscall.ProcAttr{
		Dir:   o.Dir,
		Env:   env,
		Files: files,
	})
	readyW.Close()
	releaseR.Close()
	if err != nil {
		readyR.Close()
		releaseW.Close()
		return nil, fmt.Errorf("starting %s: %w", o.Path, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil { // never on Unix
		readyR.Close()
		releaseW.Close()
		return nil, err
	}
	c := &Child{Pid: pid, proc: proc, readyR: readyR, releaseW: releaseW,
		ready: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		c.state, c.waitErr = proc.Wait()
		close(c.exited)
	}()
	go func() {
		var b [1]byte
		if n, _ := readyR.Read(b[:]); n == 1 {
			close(c.ready)
		}
	}()
	return c, nil
}

// dupSocket duplicates a socket's descriptor, close-on-exec so that no other
// process started meanwhile inherits it. The duplicate shares the socket's
// flags (it stays non-blocking) and its accept queue.
func dupSocket(conn syscall.Conn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	dup, derr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return dup, derr
}

func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)] == name && kv[len(name)] == '=' {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// WaitReady waits until the new process reports ready and returns nil; or it
// returns why not: it exited (with its status), it was not ready within
// timeout (wrapping ErrTimeout), or ctx ended. On an error the caller stops it
// with Stop.
func (c *Child) WaitReady(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.ready:
		select {
		case <-c.exited: // ready, and gone at once
			return fmt.Errorf("the new process (pid %d) reported ready, then %s", c.Pid, c.ExitStatus())
		default:
			return nil
		}
	case <-c.exited:
		return fmt.Errorf("the new process (pid %d) %s before it was ready", c.Pid, c.ExitStatus())
	case <-t.C:
		return fmt.Errorf("the new process (pid %d) was %w (%v)", c.Pid, ErrTimeout, timeout)
	case <-ctx.Done():
		return fmt.Errorf("waiting for the new process (pid %d): %w", c.Pid, ctx.Err())
	}
}

// Exited is closed once the new process has exited.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// ExitStatus says how the new process ended, once Exited is closed.
func (c *Child) ExitStatus() string {
	select {
	case <-c.exited:
	default:
		return "is running"
	}
	if c.state == nil {
		return fmt.Sprintf("could not be waited for: %v", c.waitErr)
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %v", ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", c.state.ExitCode())
}

// Release tells the new process that this one has let go of what only one
// process may hold (the state file, the registry entry): it closes the release
// pipe. Call it only after WaitReady returned nil.
func (c *Child) Release() {
	c.once.Do(func() {
		c.releaseW.Close()
		c.readyR.Close()
	})
}

// Stop ends a new process that failed: SIGTERM, so that connections it may
// have accepted finish, then SIGKILL if it has not exited within grace. It
// returns once the process has exited; only then is the release pipe closed,
// so the process never takes over. A "ready" it reports meanwhile fails.
func (c *Child) Stop(grace time.Duration) {
	c.readyR.Close() // a late "ready" fails in the new process
	select {
	case <-c.exited:
	default:
		_ = c.proc.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-c.exited:
		case <-t.C:
			_ = c.proc.Kill()
			<-c.exited
		}
		t.Stop()
	}
	c.Release()
}
