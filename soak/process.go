package soak

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a running balance-l4 binary whose output is kept in memory, so
// tests can grep it and the soak can report it when a target is missed.
type Process struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
	code int
}

// Build compiles ./cmd/balance-l4 of the module that contains dir (any folder
// inside the repository) into out, without -race: the soak measures the
// product, and the race detector's tenfold slowdown would turn load into
// timeouts on a 2-core machine. The package tests of l4 and admin run under
// -race; this binary need not.
func Build(moduleDir, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "github.com/balancel4/balance-l4/cmd/balance-l4")
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building balance-l4: %w\n%s", err, b)
	}
	return nil
}

// Start runs binary with args; stdout and stderr both go to the in-memory log.
func Start(binary string, args ...string) (*Process, error) {
	return StartTee(nil, binary, args...)
}

// StartTee is Start that also copies the output to tee, when it is not nil.
func StartTee(tee io.Writer, binary string, args ...string) (*Process, error) {
	p := &Process{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	var out io.Writer = &p.out
	if tee != nil {
		out = io.MultiWriter(&p.out, tee)
	}
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output is everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Alive reports whether the process has not exited.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends s to the process.
func (p *Process) Signal(s syscall.Signal) error {
	if err := p.cmd.Process.Signal(s); err != nil {
		return fmt.Errorf("sending %v to balance-l4: %w", s, err)
	}
	return nil
}

// Stop asks for a graceful shutdown (SIGTERM) and waits up to limit, then
// kills. It returns the exit code, or -1 when the process had to be killed.
func (p *Process) Stop(limit time.Duration) int {
	if !p.Alive() {
		return p.code
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		return -1
	}
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	if p.Alive() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// FDs counts the process's open file descriptors by kind, from /proc/PID/fd.
type FDs struct {
	Sockets int
	Pipes   int // splice(2) pipes, pooled by the copy engine between copies
	Other   int // stdio, epoll, eventfd, files
}

// NonPipe is every descriptor but splice pipes: what must return to its idle level.
func (f FDs) NonPipe() int { return f.Sockets + f.Other }

func (f FDs) String() string {
	return fmt.Sprintf("%d (sockets %d, pipes %d, other %d)", f.Sockets+f.Pipes+f.Other, f.Sockets, f.Pipes, f.Other)
}

// FDs reads the process's descriptors. An fd that closes while it is being
// read is simply not counted.
func (p *Process) FDs() (FDs, error) {
	dir := "/proc/" + strconv.Itoa(p.PID()) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return FDs{}, fmt.Errorf("listing fds of balance-l4: %w", err)
	}
	var f FDs
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		switch {
		case err != nil:
		case e.Name() == "0" || e.Name() == "1" || e.Name() == "2":
			f.Other++ // stdio: our output pipe is not a splice pipe
		case strings.HasPrefix(target, "socket:"):
			f.Sockets++
		case strings.HasPrefix(target, "pipe:"):
			f.Pipes++
		default:
			f.Other++
		}
	}
	return f, nil
}

// Output keeps the first outputHead and the last outputTail bytes: a
// ten-minute soak with access logs writes far more than is worth holding.
const (
	outputHead = 1 << 20
	outputTail = 4 << 20
)

// lockedBuffer holds the process's output for its writers and readers: all of
// it while it is small, else its head and its tail.
type lockedBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    bytes.Buffer
	dropped int64
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if room := outputHead - len(l.head); room > 0 {
		k := min(room, len(p))
		l.head = append(l.head, p[:k]...)
		p = p[k:]
	}
	l.tail.Write(p)
	if l.tail.Len() > 2*outputTail {
		excess := l.tail.Len() - outputTail
		l.tail.Next(excess)
		l.dropped += int64(excess)
	}
	return n, nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped == 0 {
		return string(l.head) + l.tail.String()
	}
	return fmt.Sprintf("%s\n[... %d bytes of output dropped ...]\n%s", l.head, l.dropped, l.tail.String())
}

// RSS reads the process's resident set size (VmRSS), in bytes.
func (p *Process) RSS() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading the memory of balance-l4: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("reading VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}
