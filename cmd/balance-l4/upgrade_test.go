package main

// End-to-end tests of the upgrade in place (SPEC §8) with built binaries:
// under load, failed upgrades, state and the PID file. The process under test
// is started from a copy of a binary in a temporary directory, which the test
// replaces (rename over it) before SIGUSR2, as an operator would.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"

	"github.com/balancel4/balance-l4/internal/etcdtest"
)

// versioned builds the binary with main.version set, once per version.
var versioned = struct {
	sync.Mutex
	dir  string
	bins map[string]string
}{bins: map[string]string{}}

func versionedBinary(t *testing.T, version string) string {
	t.Helper()
	versioned.Lock()
	defer versioned.Unlock()
	if b := versioned.bins[version]; b != "" {
		return b
	}
	if versioned.dir == "" {
		versioned.dir = filepath.Dir(binary) // removed by TestMain
	}
	out := filepath.Join(versioned.dir, "balance-l4-"+version)
	if b, err := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", version, err, b)
	}
	versioned.bins[version] = out
	return out
}

// install copies src to path (mode 0755) through a temporary file renamed
// over it: a running process's binary is replaced, not written into.
func install(t *testing.T, src, path string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	installBytes(t, data, path, mode)
}

func installBytes(t *testing.T, data []byte, path string, mode os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The new process outlives the old one, whose child it is: the test process
// becomes a subreaper so that it inherits the new process and can wait for it.
var subreaper sync.Once

func becomeSubreaper(t *testing.T) {
	subreaper.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
		}
	})
}

// upgProc is a process whose output goes to a file: the new process inherits
// it, so the log holds both, and the old one's exit is seen at once (a pipe
// would stay open while the new one runs).
type upgProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	code int
}

func startUpgradable(t *testing.T, path string, env []string, args ...string) *upgProc {
	t.Helper()
	becomeSubreaper(t)
	logPath := filepath.Join(t.TempDir(), "balance-l4.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	p := &upgProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("balance-l4 log:\n%s", p.output())
		}
	})
	return p
}

func (p *upgProc) output() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

func (p *upgProc) pid() int { return p.cmd.Process.Pid }

func (p *upgProc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatalf("sending %v: %v", s, err)
	}
}

func (p *upgProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		t.Fatalf("balance-l4 (pid %d) did not exit within %v", p.pid(), limit)
		return -1
	}
}

// logLine is one JSON log line of either process.
type logLine struct {
	PID     int    `json:"pid"`
	Message string `json:"message"`
	Client  string `json:"client"`
	Service string `json:"service"`
	NewPID  int    `json:"new_pid"`
	Error   string `json:"error"`
}

func (p *upgProc) lines() []logLine {
	var out []logLine
	for _, l := range strings.Split(p.output(), "\n") {
		var ll logLine
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &ll) == nil {
			out = append(out, ll)
		}
	}
	return out
}

// count is how many lines of pid (0: any) have a message starting with msg.
func (p *upgProc) count(pid int, msg string) int {
	n := 0
	for _, l := range p.lines() {
		if (pid == 0 || l.PID == pid) && strings.HasPrefix(l.Message, msg) {
			n++
		}
	}
	return n
}

// newProcess follows the new process of an upgrade: the test kills it at the
// end unless it exited, and reaps it (it is the test's child once the old
// one is gone).
type newProcess struct{ pid int }

func followNew(t *testing.T, pid int) *newProcess {
	n := &newProcess{pid: pid}
	t.Cleanup(func() {
		if n.alive() {
			syscall.Kill(pid, syscall.SIGKILL)
			n.waitExit(5 * time.Second)
		}
	})
	return n
}

// alive: running, and not a zombie.
func (n *newProcess) alive() bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

// waitExit reaps the process and returns its exit code, or -1 if it did not
// exit in time (or was someone else's child).
func (n *newProcess) waitExit(limit time.Duration) int {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(n.pid, &ws, unix.WNOHANG, nil)
		if err == nil && pid == n.pid {
			return ws.ExitStatus()
		}
		if err != nil && !n.alive() {
			return -1 // reaped by the old process, which was still its parent
		}
	}
	return -1
}

type apiInfo struct {
	Version string
	PID     int
}

func info(addr string) (apiInfo, int) {
	var i apiInfo
	code := getJSON(addr, "/api/v1/info", &i)
	return i, code
}

// upgradeConfig is a service in front of echo backends, JSON logs, the admin
// server and what extra adds.
func upgradeConfig(t *testing.T, svcAddr, adminAddr, extra string, backends ...net.Listener) string {
	var b strings.Builder
	fmt.Fprintf(&b, "shutdown_timeout = \"30s\"\n%s\n[admin]\nlisten = %q\n[log]\nformat = \"json\"\n", extra, adminAddr)
	fmt.Fprintf(&b, "[health_check]\ninterval = \"1s\"\n[[services]]\nname = \"echo\"\nlisten = %q\n", svcAddr)
	for i, be := range backends {
		fmt.Fprintf(&b, "[[services.backends]]\nname = \"b%d\"\naddress = %q\n", i+1, be.Addr())
	}
	return writeFile(t, "balance.toml", b.String())
}

// --- load ---

// loadStats counts what the short connections saw.
type loadStats struct {
	mu        sync.Mutex
	ok        int
	refused   int
	reset     int
	corrupted int
	other     []string
	connects  []time.Time       // successful connects, in the order recorded
	started   map[int]time.Time // local port -> dial time, for the successful ones
	done      chan struct{}     // closed when the load has stopped
}

func (s *loadStats) failures() int { return s.refused + s.reset + s.corrupted + len(s.other) }

func classify(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	}
	return "other"
}

// shortLoad opens about rate connections a second to addr until stop is
// closed (or limit passes): each sends a line and reads it back.
func shortLoad(addr string, rate int, limit time.Duration, stop <-chan struct{}) *loadStats {
	s := &loadStats{started: map[int]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		end := time.After(limit)
		for n := 0; ; n++ {
			select {
			case <-stop:
				wg.Wait()
				return
			case <-end:
				wg.Wait()
				return
			case <-tick.C:
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.one(addr, n)
			}()
		}
	}()
	return s
}

func (s *loadStats) wait() { <-s.done }

func (s *loadStats) one(addr string, n int) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		s.fail(classify(err), err)
		return
	}
	connected := time.Now()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := fmt.Sprintf("hello %d %d\n", n, start.UnixNano())
	if _, err := io.WriteString(c, msg); err != nil {
		s.fail(classify(err), err)
		return
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		s.fail(classify(err), err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got != msg {
		s.corrupted++
		return
	}
	s.ok++
	s.connects = append(s.connects, connected)
	s.started[c.LocalAddr().(*net.TCPAddr).Port] = start
}

func (s *loadStats) fail(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case "refused":
		s.refused++
	case "reset":
		s.reset++
	default:
		s.other = append(s.other, err.Error())
	}
}

// longestPause is the longest gap between successful connects in [from, to].
func (s *loadStats) longestPause(from, to time.Time) time.Duration {
	s.mu.Lock()
	ts := slices.Clone(s.connects)
	s.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	var prev time.Time
	for _, t := range ts {
		if t.Before(from) || t.After(to) {
			continue
		}
		if !prev.IsZero() && t.Sub(prev) > longest {
			longest = t.Sub(prev)
		}
		prev = t
	}
	return longest
}

// longConn is a long-lived connection exchanging random chunks, each checked
// on its way back, with a running SHA-256 of both directions.
type longConn struct {
	c        *net.TCPConn
	port     int
	sent     [32]byte
	received [32]byte
	rounds   int
	err      error
}

func (l *longConn) run(stop <-chan struct{}) {
	hs, hr := sha256.New(), sha256.New()
	buf, back := make([]byte, 4096), make([]byte, 4096)
	for {
		select {
		case <-stop:
			l.c.CloseWrite()
			l.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := l.c.Read(back); err != io.EOF || n != 0 {
				l.err = fmt.Errorf("after our FIN: read %d bytes, %v; want EOF", n, err)
			}
			copy(l.sent[:], hs.Sum(nil))
			copy(l.received[:], hr.Sum(nil))
			l.c.Close()
			return
		case <-time.After(20 * time.Millisecond):
		}
		rand.Read(buf)
		l.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := l.c.Write(buf); err != nil {
			l.err = fmt.Errorf("round %d: writing: %w", l.rounds, err)
			l.c.Close()
			return
		}
		hs.Write(buf)
		if _, err := io.ReadFull(l.c, back); err != nil {
			l.err = fmt.Errorf("round %d: reading: %w", l.rounds, err)
			l.c.Close()
			return
		}
		hr.Write(back)
		if !bytes.Equal(buf, back) {
			l.err = fmt.Errorf("round %d: corrupted data", l.rounds)
		}
		l.rounds++
	}
}

// TestUpgradeUnderLoad replaces the binary and sends SIGUSR2 while about 500
// new connections a second and 50 long-lived ones run: no connection is
// refused, reset or corrupted; the long-lived ones finish on the old process,
// new ones land on the new one, whose version the API shows; the old process
// exits 0 once its last connection ends, and the PID file names the new one.
func TestUpgradeUnderLoad(t *testing.T) {
	v1, v2 := versionedBinary(t, "v1.0.0-test"), versionedBinary(t, "v2.0.0-test")
	b1, b2 := startEcho(t), startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	path, pidFile := filepath.Join(dir, "balance-l4"), filepath.Join(dir, "balance-l4.pid")
	install(t, v1, path, 0o755)
	cfg := upgradeConfig(t, svcAddr, adminAddr, "", b1, b2)
	old := startUpgradable(t, path, nil, "-config", cfg, "-pidfile", pidFile)
	waitListening(t, svcAddr)
	waitFor(t, "the PID file", func() bool { return readPID(pidFile) == old.pid() })
	if i, code := info(adminAddr); code != 200 || i.Version != "v1.0.0-test" || i.PID != old.pid() {
		t.Fatalf("before the upgrade: /api/v1/info %+v (status %d)", i, code)
	}

	// 50 long-lived connections, then the stream of new ones.
	longs := make([]*longConn, 50)
	stopLong := make(chan struct{})
	var longWG sync.WaitGroup
	for i := range longs {
		c, err := net.DialTimeout("tcp", svcAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("long-lived connection %d: %v", i, err)
		}
		longs[i] = &longConn{c: c.(*net.TCPConn), port: c.LocalAddr().(*net.TCPAddr).Port}
		longWG.Add(1)
		go func() { defer longWG.Done(); longs[i].run(stopLong) }()
	}
	stopShort := make(chan struct{})
	load := shortLoad(svcAddr, 500, 60*time.Second, stopShort)
	time.Sleep(time.Second) // load before the upgrade

	install(t, v2, path, 0o755)
	signalled := time.Now()
	old.signal(t, syscall.SIGUSR2)
	var newPID int
	waitFor(t, "the hand-over in the old process's log", func() bool {
		for _, l := range old.lines() {
			if l.PID == old.pid() && strings.HasPrefix(l.Message, "upgrade: the new process is ready; handing over") {
				newPID = l.NewPID
				return true
			}
		}
		return false
	})
	handedOver := time.Now()
	nw := followNew(t, newPID)
	waitFor(t, "the new version in the API", func() bool {
		i, code := info(adminAddr)
		return code == 200 && i.Version == "v2.0.0-test" && i.PID == newPID
	})
	waitFor(t, "the PID file rewritten", func() bool { return readPID(pidFile) == newPID })
	lateFrom := time.Now().Add(500 * time.Millisecond) // the old process closed its listeners by then
	time.Sleep(2 * time.Second)                        // load on the new process alone
	close(stopShort)
	load.wait()

	// The long-lived connections still work, on the old process, which
	// waits for them.
	if !old.alive() {
		t.Fatal("the old process exited while it still had connections")
	}
	close(stopLong)
	longWG.Wait()
	if code := old.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("old process exit code %d, want 0", code)
	}
	oldExited := time.Now()

	// Figures.
	load.mu.Lock()
	during := 0
	for _, at := range load.started {
		if !at.Before(signalled) && !at.After(handedOver) {
			during++
		}
	}
	ok, refused, reset, corrupted, other := load.ok, load.refused, load.reset, load.corrupted, load.other
	load.mu.Unlock()
	pause := load.longestPause(signalled.Add(-time.Second), handedOver.Add(2*time.Second))
	t.Logf("upgrade under load: %d short connections in all (%d ok), %d during the hand-over (SIGUSR2 to ready: %v); refused %d, reset %d, corrupted %d, other %d; longest accept pause %v; old process exited %v after SIGUSR2",
		ok+refused+reset+corrupted+len(other), ok, during, handedOver.Sub(signalled).Round(time.Millisecond),
		refused, reset, corrupted, len(other), pause.Round(time.Microsecond), oldExited.Sub(signalled).Round(time.Millisecond))
	if refused+reset+corrupted+len(other) > 0 {
		t.Errorf("short connections: refused %d, reset %d, corrupted %d, other %d %q", refused, reset, corrupted, len(other), other)
	}
	if ok < 1000 {
		t.Errorf("only %d short connections succeeded: the load did not run", ok)
	}
	for i, l := range longs {
		if l.err != nil || l.sent != l.received || l.rounds < 10 {
			t.Errorf("long-lived connection %d: %d rounds, error %v, checksums equal %v", i, l.rounds, l.err, l.sent == l.received)
		}
	}

	// Who served what, from the access log of both processes.
	servedBy := map[int]int{} // client port -> pid
	for _, l := range old.lines() {
		if l.Message == "connection closed" && l.Service == "echo" {
			if _, port, err := net.SplitHostPort(l.Client); err == nil {
				p, _ := strconv.Atoi(port)
				servedBy[p] = l.PID
			}
		}
	}
	for i, l := range longs {
		if servedBy[l.port] != old.pid() {
			t.Errorf("long-lived connection %d was served by pid %d, want the old process %d", i, servedBy[l.port], old.pid())
		}
	}
	late, lateOnNew, earlyOnOld := 0, 0, 0
	load.mu.Lock()
	for port, at := range load.started {
		switch {
		case at.After(lateFrom):
			late++
			if servedBy[port] == newPID {
				lateOnNew++
			}
		case at.Before(signalled) && servedBy[port] == old.pid():
			earlyOnOld++
		}
	}
	load.mu.Unlock()
	if late < 500 || lateOnNew != late {
		t.Errorf("of %d connections made after the hand-over, %d were served by the new process (pid %d); want all", late, lateOnNew, newPID)
	}
	if earlyOnOld == 0 {
		t.Error("no connection before the upgrade was served by the old process: the access log is not what the test thinks")
	}

	// The new process serves on, and stops like any process.
	c := dial(t, svcAddr)
	roundTrip(t, c, "after the old process left")
	c.Close()
	syscall.Kill(newPID, syscall.SIGTERM)
	if code := nw.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("new process exit code %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the PID file is still there after the new process stopped: %v", err)
	}
}

func (p *upgProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// TestFailedUpgradesKeepServing: a missing binary, one that is not
// executable, one that exits at once, a bad configuration and a new process
// never ready each leave the old process serving as before, with a log line
// that names the upgrade; a SIGUSR2 during an upgrade is ignored; changes
// through the API wait for the upgrade's end (503); and a later SIGUSR2
// upgrades.
func TestFailedUpgradesKeepServing(t *testing.T) {
	v1, v2 := versionedBinary(t, "v1.0.0-test"), versionedBinary(t, "v2.0.0-test")
	b1 := startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "balance-l4")
	install(t, v1, path, 0o755)
	cfg := upgradeConfig(t, svcAddr, adminAddr, "", b1)
	good, _ := os.ReadFile(cfg)
	old := startUpgradable(t, path, []string{"BALANCE_UPGRADE_TIMEOUT=2s"}, "-config", cfg)
	waitListening(t, svcAddr)
	waitListening(t, adminAddr)

	stop := make(chan struct{})
	load := shortLoad(svcAddr, 100, 90*time.Second, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			load.wait()
		}
	}()

	failures := 0
	failAndServe := func(what, want string) {
		t.Helper()
		failures++
		old.signal(t, syscall.SIGUSR2)
		waitFor(t, what+": the failure in the log", func() bool { return old.count(old.pid(), "upgrade failed") >= failures })
		var line logLine
		for _, l := range old.lines() {
			if l.PID == old.pid() && strings.HasPrefix(l.Message, "upgrade failed") {
				line = l
			}
		}
		if !strings.Contains(line.Error, want) {
			t.Errorf("%s: the log says %q (%s), want it to say %q", what, line.Message, line.Error, want)
		}
		// Still the old process, serving and answering.
		waitFor(t, what+": changes taken again", func() bool {
			return postJSON(adminAddr, "/api/v1/services/echo/backends/b1/undrain", "") == 200
		})
		if i, code := info(adminAddr); code != 200 || i.PID != old.pid() || i.Version != "v1.0.0-test" {
			t.Fatalf("%s: /api/v1/info %+v (status %d), want the old process", what, i, code)
		}
		c := dial(t, svcAddr)
		roundTrip(t, c, what)
		c.Close()
		if !old.alive() {
			t.Fatalf("%s: the old process exited", what)
		}
	}

	os.Remove(path)
	failAndServe("missing binary", "no such file or directory")

	install(t, v2, path, 0o644)
	failAndServe("binary not executable", "permission denied")

	installBytes(t, []byte("#!/bin/sh\nexit 1\n"), path, 0o755)
	failAndServe("binary that exits at once", "exited with status 1 before it was ready")

	install(t, v2, path, 0o755)
	os.WriteFile(cfg, []byte("this is [not toml"), 0o600)
	failAndServe("bad configuration", "exited with status 1 before it was ready")
	os.WriteFile(cfg, good, 0o600)

	// Never ready: a script that sleeps. Meanwhile a second SIGUSR2 is
	// ignored and changes answer 503.
	installBytes(t, []byte("#!/bin/sh\nexec sleep 60\n"), path, 0o755)
	failures++
	old.signal(t, syscall.SIGUSR2)
	waitFor(t, "the stalled upgrade started", func() bool { return old.count(old.pid(), "upgrade: starting the new binary") == failures })
	old.signal(t, syscall.SIGUSR2)
	waitFor(t, "the second SIGUSR2 ignored", func() bool {
		return old.count(old.pid(), "upgrade: SIGUSR2 ignored: an upgrade is already in progress") == 1
	})
	if code := postJSON(adminAddr, "/api/v1/services/echo/backends/b1/drain", ""); code != 503 {
		t.Errorf("drain during an upgrade: status %d, want 503", code)
	}
	waitFor(t, "never ready: the failure in the log", func() bool { return old.count(old.pid(), "upgrade failed") >= failures })
	var stalled int
	var last logLine
	for _, l := range old.lines() {
		if strings.HasPrefix(l.Message, "upgrade failed") {
			last = l
		}
	}
	stalled = last.NewPID
	if !strings.Contains(last.Error, "not ready in time") {
		t.Errorf("never ready: the log says %q", last.Error)
	}
	waitFor(t, "the stalled process stopped", func() bool { return stalled != 0 && !(&newProcess{pid: stalled}).alive() })
	if c := old.count(old.pid(), "upgrade: starting the new binary"); c != failures {
		t.Errorf("%d upgrades started, want %d: the ignored SIGUSR2 started one", c, failures)
	}

	// A later SIGUSR2 with a good binary upgrades.
	install(t, v2, path, 0o755)
	old.signal(t, syscall.SIGUSR2)
	if code := old.wait(t, 40*time.Second); code != 0 {
		t.Fatalf("old process exit code %d after the upgrade, want 0", code)
	}
	i, code := info(adminAddr)
	if code != 200 || i.Version != "v2.0.0-test" {
		t.Fatalf("after the upgrade: /api/v1/info %+v (status %d)", i, code)
	}
	followNew(t, i.PID)
	close(stop)
	load.wait()
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("failed upgrades: %d connections ok, refused %d, reset %d, corrupted %d, other %d", load.ok, load.refused, load.reset, load.corrupted, len(load.other))
	if load.failures() > 0 {
		t.Errorf("connections failed during the failed upgrades: refused %d, reset %d, corrupted %d, other %q", load.refused, load.reset, load.corrupted, load.other)
	}
}

// TestUpgradeKeepsStateAndPIDFile: drains and operator weights, kept in the
// state file, are the new process's; it writes the state file from then on;
// the PID file and systemd's MAINPID follow it.
func TestUpgradeKeepsStateAndPIDFile(t *testing.T) {
	v1, v2 := versionedBinary(t, "v1.0.0-test"), versionedBinary(t, "v2.0.0-test")
	b1, b2 := startEcho(t), startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	path, pidFile, stateFile := filepath.Join(dir, "balance-l4"), filepath.Join(dir, "pid"), filepath.Join(dir, "state.json")
	install(t, v1, path, 0o755)
	cfg := upgradeConfig(t, svcAddr, adminAddr, fmt.Sprintf("state_file = %q", stateFile), b1, b2)

	notifyPath := filepath.Join(t.TempDir(), "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	old := startUpgradable(t, path, []string{"NOTIFY_SOCKET=" + notifyPath}, "-config", cfg, "-pidfile", pidFile)
	waitListening(t, adminAddr)
	if msg := readNotify(t, notify); msg != "READY=1" {
		t.Fatalf("sd_notify at start: %q", msg)
	}
	if readPID(pidFile) != old.pid() {
		t.Fatalf("PID file %d, want %d", readPID(pidFile), old.pid())
	}
	if code := postJSON(adminAddr, "/api/v1/services/echo/backends/b1/drain", ""); code != 200 {
		t.Fatalf("drain: status %d", code)
	}
	setWeight(t, adminAddr, "b2", 7)

	install(t, v2, path, 0o755)
	old.signal(t, syscall.SIGUSR2)
	msg := readNotify(t, notify)
	var newPID int
	if _, err := fmt.Sscanf(msg, "MAINPID=%d\nREADY=1", &newPID); err != nil || newPID == old.pid() {
		t.Fatalf("sd_notify after the upgrade: %q", msg)
	}
	followNew(t, newPID)
	if got := readPID(pidFile); got != newPID {
		t.Fatalf("PID file %d after the upgrade, want the new process %d", got, newPID)
	}
	if code := old.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("old process exit code %d", code)
	}
	if got := readPID(pidFile); got != newPID {
		t.Fatalf("PID file %d after the old process left, want %d", got, newPID)
	}
	var b struct {
		State  string
		Weight int
	}
	if i, _ := info(adminAddr); i.PID != newPID {
		t.Fatalf("admin answered by pid %d, want %d", i.PID, newPID)
	}
	if code := getJSON(adminAddr, "/api/v1/services/echo/backends/b1", &b); code != 200 || b.State != "draining" {
		t.Errorf("after the upgrade b1: status %d, state %q; want draining", code, b.State)
	}
	if code := getJSON(adminAddr, "/api/v1/services/echo/backends/b2", &b); code != 200 || b.Weight != 7 {
		t.Errorf("after the upgrade b2: status %d, weight %d; want 7", code, b.Weight)
	}
	// The new process owns the state file: an undrain lands in it.
	if code := postJSON(adminAddr, "/api/v1/services/echo/backends/b1/undrain", ""); code != 200 {
		t.Fatalf("undrain on the new process: status %d", code)
	}
	data, _ := os.ReadFile(stateFile)
	var st struct {
		State struct {
			Backends []struct {
				Backend string
				Drained bool
				Weight  *int
			}
		}
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file: %v\n%s", err, data)
	}
	for _, sb := range st.State.Backends {
		if sb.Backend == "b1" && sb.Drained {
			t.Errorf("the state file still has b1 drained after the new process undrained it:\n%s", data)
		}
	}
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("waiting for sd_notify: %v", err)
	}
	return string(buf[:n])
}

func setWeight(t *testing.T, adminAddr, backend string, w int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+adminAddr+"/api/v1/services/echo/backends/"+backend+"/weight", strings.NewReader(fmt.Sprintf(`{"weight": %d}`, w)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set weight: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestUpgradeInAFleet: the new process takes over the instance's registry
// entry (its version shows there) and the old one leaves it in place.
func TestUpgradeInAFleet(t *testing.T) {
	v1, v2 := versionedBinary(t, "v1.0.0-test"), versionedBinary(t, "v2.0.0-test")
	c := etcdtest.Start(t, etcdtest.Options{})
	b1 := startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "balance-l4")
	install(t, v1, path, 0o755)
	cfg := upgradeConfig(t, svcAddr, adminAddr, fmt.Sprintf("state_file = %q\n[fleet]\netcd = [%s]\nname = \"up\"\ninstance = \"edge-1\"\npublish_interval = \"500ms\"\nrequest_timeout = \"1s\"\ndial_timeout = \"1s\"\n",
		filepath.Join(dir, "state.json"), quoteList(c.Endpoints())), b1)
	old := startUpgradable(t, path, nil, "-config", cfg)
	waitListening(t, adminAddr)
	type registry struct {
		Instances []struct{ ID, Version string }
	}
	version := func() string {
		var f registry
		if getJSON(adminAddr, "/api/v1/fleet", &f) != 200 || len(f.Instances) != 1 || f.Instances[0].ID != "edge-1" {
			return ""
		}
		return f.Instances[0].Version
	}
	waitFor(t, "v1 in the registry", func() bool { return version() == "v1.0.0-test" })
	if code := postJSON(adminAddr, "/api/v1/services/echo/backends/b1/drain", ""); code != 200 {
		t.Fatalf("drain: status %d", code)
	}

	install(t, v2, path, 0o755)
	old.signal(t, syscall.SIGUSR2)
	if code := old.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("old process exit code %d", code)
	}
	i, _ := info(adminAddr)
	followNew(t, i.PID)
	if i.Version != "v2.0.0-test" {
		t.Fatalf("after the upgrade: %+v", i)
	}
	waitFor(t, "v2 in the registry", func() bool { return version() == "v2.0.0-test" })
	// The old lease is not revoked, and once it expires (10 s) the entry is
	// still there: it is the new process's.
	time.Sleep(11 * time.Second) // the registry lease's TTL, fixed by SPEC §6
	cli := c.Client(t)
	resp, err := cli.Get(t.Context(), "/balance-l4/up/instances/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"version":"v2.0.0-test"`) {
		var values []string
		for _, kv := range resp.Kvs {
			values = append(values, string(kv.Value))
		}
		t.Fatalf("registry in etcd after the old lease expired: %d keys %q", len(resp.Kvs), values)
	}
	var b struct{ State string }
	if code := getJSON(adminAddr, "/api/v1/services/echo/backends/b1", &b); code != 200 || b.State != "draining" {
		t.Errorf("after the upgrade b1: status %d, state %q; want draining", code, b.State)
	}
}
