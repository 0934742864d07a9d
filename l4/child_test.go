package l4

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Some tests run a runtime in a child process (this test binary, re-executed
// with childEnv set): to lower its file-descriptor limit, or to trace its
// system calls.
const (
	childEnv        = "L4_TEST_CHILD"
	childBackendEnv = "L4_TEST_CHILD_BACKEND"
)

// maybeRunChild runs the child's part and exits when childEnv is set.
func maybeRunChild() {
	mode := os.Getenv(childEnv)
	if mode == "" {
		return
	}
	os.Exit(runChild(mode))
}

// runChild serves one service in front of the parent's backend until its
// standard input closes. Mode "fdlimit" first lowers RLIMIT_NOFILE to 64.
func runChild(mode string) int {
	if mode == "fdlimit" {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 64, Max: 64}); err != nil {
			fmt.Fprintln(os.Stderr, "setting RLIMIT_NOFILE:", err)
			return 2
		}
	}
	rt := NewRuntime(Options{Log: zerolog.New(os.Stderr)})
	cfg := testConfig(testService("s", be("b", os.Getenv(childBackendEnv))))
	cfg.Log.AccessLog = false
	if _, err := rt.Apply(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "applying:", err)
		return 2
	}
	fmt.Printf("ADDR %s\n", rt.Addr("s"))
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = rt.Shutdown(ctx)
	return 0
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	addr   string
	pid    int // the runtime's process (under strace, not strace's)
}

// startChild starts this test binary as a child in mode, optionally under
// a wrapper command (strace), and reads the service's address.
func startChild(t *testing.T, mode, backend string, wrapper ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, wrapper...), exe, "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childBackendEnv+"="+backend)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, stdin: stdin, stderr: &syncBuffer{}}
	cmd.Stderr = ch.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ch.stdin.Close()
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(testTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				lines <- a
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case ch.addr = <-lines:
	case <-time.After(testTimeout):
		t.Fatalf("child did not start; stderr:\n%s", ch.stderr)
	}
	ch.pid = cmd.Process.Pid
	if len(wrapper) > 0 {
		ch.pid = childPID(t, cmd.Process.Pid)
	}
	return ch
}

// stop closes the child's stdin and waits for it to exit.
func (ch *child) stop(t *testing.T) {
	t.Helper()
	_ = ch.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- ch.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child exited with %v; stderr:\n%s", err, ch.stderr)
		}
	case <-time.After(testTimeout):
		_ = ch.cmd.Process.Kill()
		t.Fatal("child did not exit")
	}
}

// childPID returns the first child of pid (the process strace runs).
func childPID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		t.Fatalf("process %d has no child", pid)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// cpuTicks returns a process's user+system CPU time in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading the child's stat (did it exit?): %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after the command: state is f[0], utime f[11], stime f[12].
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing %q", s)
	}
	return u + st
}

// roundTrip sends a byte through addr and reads the echo.
func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return err
}

// TestAcceptLoopUnderFDLimit: with RLIMIT_NOFILE at 64, 100 connections
// exhaust the child's descriptors; its accept loop backs off instead of
// spinning or exiting, and serves again once they close. The connections
// it cannot accept wait in the listen queue, which somaxconn may cap at 128:
// more than that and the test's own dials would time out.
func TestAcceptLoopUnderFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	srv := startBackend(t, echo)
	ch := startChild(t, "fdlimit", srv.addr)
	if err := roundTrip(ch.addr); err != nil {
		t.Fatalf("before the flood: %v", err)
	}

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range 100 {
		c, err := net.DialTimeout("tcp", ch.addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "the child to hit its descriptor limit", func() bool {
		return strings.Contains(ch.stderr.String(), "accepting connections failed")
	})
	// Over one second of exhaustion the child must mostly sleep: a spinning
	// accept loop burns a whole core (100 ticks).
	before := cpuTicks(t, ch.pid)
	time.Sleep(time.Second)
	used := cpuTicks(t, ch.pid) - before
	if used > 30 {
		t.Fatalf("child used %d CPU ticks in 1s while out of descriptors: the accept loop spins", used)
	}
	if !strings.Contains(ch.stderr.String(), "too many open files") {
		t.Fatalf("child never reported EMFILE; stderr:\n%s", ch.stderr)
	}

	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	var err error
	for range 50 {
		if err = roundTrip(ch.addr); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("child does not serve after the connections closed: %v\nstderr:\n%s", err, ch.stderr)
	}
	ch.stop(t)
}

// TestSpliceIsUsed runs a 64 MiB transfer through a child under strace and
// checks the bytes moved with splice(2), not through user-space reads and
// writes.
func TestSpliceIsUsed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	strace := needStrace(t)
	const size = 64 << 20
	received := make(chan int64, 1)
	srv := startBackend(t, func(c *net.TCPConn) {
		n, _ := io.Copy(io.Discard, c)
		received <- n
		_, _ = c.Write([]byte("k"))
	})
	out := filepath.Join(t.TempDir(), "strace.txt")
	ch := startChild(t, "splice", srv.addr, strace, "-f", "-c", "-o", out, "-e", "trace=splice,read,write,readv,writev,recvfrom,sendto,recvmsg,sendmsg")

	c, err := net.DialTimeout("tcp", ch.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 1<<20)
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("sending: %v", err)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		t.Fatalf("reading the acknowledgement: %v", err)
	}
	if n := <-received; n != size {
		t.Fatalf("backend received %d bytes, want %d", n, size)
	}
	_ = c.Close()
	ch.stop(t)

	report, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	calls := straceCalls(string(report))
	t.Logf("system calls: %v", calls)
	if calls["splice"] < 64 {
		t.Fatalf("%d splice calls for 64 MiB; strace summary:\n%s", calls["splice"], report)
	}
	// A user-space copy of 64 MiB would need thousands of reads and writes;
	// what remains is the runtime's own (eventfd, signals) and stdout.
	if rw := calls["read"] + calls["write"] + calls["readv"] + calls["writev"] + calls["recvfrom"] + calls["sendto"]; rw > 500 {
		t.Fatalf("%d read/write calls: the data went through user space; strace summary:\n%s", rw, report)
	}
}

// needStrace returns strace's path; without it the test fails in CI and is
// skipped elsewhere.
func needStrace(t *testing.T) string {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("strace is not installed")
		}
		t.Skip("strace is not installed")
	}
	return strace
}

// straceCalls parses `strace -c` output into calls per system call.
func straceCalls(report string) map[string]int {
	calls := map[string]int{}
	row := regexp.MustCompile(`^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$`)
	for _, line := range strings.Split(report, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			calls[m[2]] = n
		}
	}
	return calls
}

// TestSmallMessagesAreReadNotSpliced runs a ping-pong of small messages
// through a child under strace: they go through read(2) and write(2), two
// calls per message and direction (a short read says the socket is empty;
// a FIN that came with the bytes shows as EPOLLRDHUP, and only then does
// the engine read on), and never through splice.
func TestSmallMessagesAreReadNotSpliced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	strace := needStrace(t)
	srv := startBackend(t, echo)
	out := filepath.Join(t.TempDir(), "strace.txt")
	ch := startChild(t, "splice", srv.addr, strace, "-f", "-c", "-o", out, "-e", "trace=splice,read,write")

	c, err := net.DialTimeout("tcp", ch.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	const rounds = 500
	msg, reply := payload(64, 7), make([]byte, 64)
	for i := range rounds {
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("round %d: sending: %v", i, err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatalf("round %d: reading the echo: %v", i, err)
		}
		if !bytes.Equal(reply, msg) {
			t.Fatalf("round %d: echo %q, want %q", i, reply, msg)
		}
	}
	_ = c.Close()
	ch.stop(t)

	report, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	calls := straceCalls(string(report))
	t.Logf("system calls for %d round trips: %v", rounds, calls)
	if calls["splice"] > 10 {
		t.Fatalf("%d splice calls for %d small messages each way; strace summary:\n%s", calls["splice"], rounds, report)
	}
	// 2 reads and 2 writes per round trip, with room for the runtime's own
	// and for a wake-up that finds nothing left to read.
	if rw := calls["read"] + calls["write"]; rw < 4*rounds || rw > 5*rounds {
		t.Fatalf("%d read/write calls for %d round trips, want about %d; strace summary:\n%s", rw, rounds, 4*rounds, report)
	}
}
