// Package testservers starts real database servers (PostgreSQL, MariaDB,
// Redis) from the machine's Debian packages for tests that must talk to the
// real thing: health checks, the data path in front of a database.
//
// Each server runs on a free loopback port, in its own temporary directory,
// as its own system user when the test runs as root, and is stopped by PID
// (SIGTERM, then SIGKILL to its process group after a timeout). Starting
// PostgreSQL and MariaDB takes seconds, so a test binary shares one of each:
//
//	var pg = testservers.NewLazy(testservers.StartPostgres)
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop() // before goleak: a running server has a goroutine waiting for it
//		if code == 0 && goleak.Find() != nil { code = 1 }
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		srv := pg.Get(t) // skips (or, under CI, fails) when PostgreSQL is not installed
//		... srv.Addr ...
//	}
package testservers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrMissingBinary: the server's program is not installed here.
var ErrMissingBinary = errors.New("testservers: server binary not installed")

// How long a server may take to start listening, and to stop.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// Server is one running server process.
type Server struct {
	Name string // "postgres", "mariadb", "redis"
	Addr string // 127.0.0.1:port
	Dir  string // its data directory, removed by Stop

	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd.Wait returned
	waitErr  error
	logPath  string
	stopOnce sync.Once
	stopErr  error
}

// Stop terminates the server (SIGTERM, then SIGKILL to its process group
// after a timeout), waits for it and removes its directory. It is safe to
// call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		// Signal again every second: MariaDB loses a SIGTERM that arrives
		// before its signal thread runs.
		resend := time.NewTicker(time.Second)
		defer resend.Stop()
		deadline := time.NewTimer(stopTimeout)
		defer deadline.Stop()
		for stopped := false; !stopped; {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
				stopped = true
			case <-resend.C:
			case <-deadline.C:
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.exited
				stopped = true
				s.stopErr = fmt.Errorf("stopping %s (pid %d): killed after %s", s.Name, s.cmd.Process.Pid, stopTimeout)
			}
		}
		// Children (PostgreSQL's backends) may outlive a killed parent.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		if err := os.RemoveAll(s.Dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("removing %s: %w", s.Dir, err)
		}
	})
	return s.stopErr
}

// Log returns the end of the server's log, for failure messages.
func (s *Server) Log() string { return tail(s.logPath) }

// account is the system user a server runs as.
type account struct {
	name     string
	uid, gid int
}

// serverAccount returns the system user named name when running as root
// (servers such as PostgreSQL refuse to run as root), else nil: run as we are.
func serverAccount(name string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("looking up system user %s: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("parsing uid of %s: %w", name, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("parsing gid of %s: %w", name, err)
	}
	return &account{name: name, uid: uid, gid: gid}, nil
}

// tempDir makes a private directory owned by acct.
func tempDir(prefix string, acct *account) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("making a temporary directory: %w", err)
	}
	if acct != nil {
		if err := os.Chown(dir, acct.uid, acct.gid); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("handing %s to %s: %w", dir, acct.name, err)
		}
	}
	return dir, nil
}

// command prepares bin with args to run as acct, in its own process group
// (so Stop can kill its children), killed if the test binary dies, with
// output to logPath.
func command(acct *account, logPath, bin string, args ...string) (*exec.Cmd, *os.File, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile // *os.File: no copying goroutines
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if acct != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid)}
		cmd.Env = append(cmd.Env, "HOME="+filepath.Dir(logPath), "USER="+acct.name)
	}
	return cmd, logFile, nil
}

// run runs a setup program (initdb) to completion.
func run(acct *account, logPath, bin string, args ...string) error {
	cmd, logFile, err := command(acct, logPath, bin, args...)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s: %w\n%s", filepath.Base(bin), err, tail(logPath))
	}
	return nil
}

// start starts a server and waits until it accepts connections on addr and
// its log (logPath, or name.log in dir when "") contains readyLine.
func start(name, dir, addr, logPath, readyLine string, acct *account, bin string, args ...string) (*Server, error) {
	if logPath == "" {
		logPath = filepath.Join(dir, name+".log")
	}
	cmd, logFile, err := command(acct, logPath, bin, args...)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &Server{Name: name, Addr: addr, Dir: dir, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(readyLine); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady dials until the server accepts and its log holds readyLine, it
// exits, or startTimeout passes.
func (s *Server) waitReady(readyLine string) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited while starting: %v\n%s", s.Name, s.waitErr, s.Log())
		default:
		}
		if readyLine == "" || strings.Contains(tail(s.logPath), readyLine) {
			conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err == nil {
				_ = conn.Close()
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after %s\n%s", s.Name, s.Addr, startTimeout, s.Log())
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinary returns the first of paths that exists (globs allowed).
func findBinary(name string, paths ...string) (string, error) {
	for _, p := range paths {
		matches, _ := filepath.Glob(p)
		for i := len(matches) - 1; i >= 0; i-- { // the newest version sorts last
			if fi, err := os.Stat(matches[i]); err == nil && !fi.IsDir() {
				return matches[i], nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s (looked for %v)", ErrMissingBinary, name, paths)
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Lazy starts a server on first use and shares it for the rest of the test
// binary; call Stop from TestMain.
type Lazy struct {
	start func() (*Server, error)
	once  sync.Once
	srv   *Server
	err   error
}

// NewLazy returns a Lazy that starts its server with start.
func NewLazy(start func() (*Server, error)) *Lazy { return &Lazy{start: start} }

// Get returns the running server, starting it on the first call. A missing
// binary skips the test, or fails it when the CI variable is set (CI must
// not pass by skipping); any other start error fails the test.
func (l *Lazy) Get(tb testing.TB) *Server {
	tb.Helper()
	l.once.Do(func() { l.srv, l.err = l.start() })
	if l.err != nil {
		Fail(tb, l.err)
	}
	return l.srv
}

// Stop stops the server if it was started.
func (l *Lazy) Stop() error {
	l.once.Do(func() { l.err = errors.New("testservers: stopped before start") })
	if l.srv == nil {
		return nil
	}
	return l.srv.Stop()
}

// Start starts a server for one test and stops it in t.Cleanup.
func Start(tb testing.TB, start func() (*Server, error)) *Server {
	tb.Helper()
	srv, err := start()
	if err != nil {
		Fail(tb, err)
	}
	tb.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return srv
}

// Fail ends the test for a start error: a skip for a missing binary outside
// CI, else a failure.
func Fail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrMissingBinary) && os.Getenv("CI") == "" {
		tb.Skipf("skipping: %v", err)
	}
	tb.Fatal(err)
}

// removeAfter removes dir after a failed start and returns err.
func removeAfter(dir string, err error) error {
	_ = os.RemoveAll(dir)
	return err
}
