package main

// End-to-end tests of the built binary: command line, exit codes, signals,
// reload, the state file and the accept loop under a tiny fd limit. Every
// socket is on 127.0.0.1 and every process is stopped by the test.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var binary string // built once in TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "balance-l4-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "balance-l4")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building balance-l4: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runBinary runs the binary to completion and returns its exit code and output.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running balance-l4 %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runBinary(t, "-version")
	if code != 0 || !strings.HasPrefix(out, "balance-l4 ") {
		t.Fatalf("-version: exit %d, output %q", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"-colour"}, {"-config"}, {"extra-argument"}, {"-demo", "-check"}} {
		code, _, stderr := runBinary(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
	}
}

func TestCheckShippedConfig(t *testing.T) {
	code, out, stderr := runBinary(t, "-config", "../../balance.toml", "-check")
	if code != 0 || strings.TrimSpace(out) != "configuration OK" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

func TestCheckReportsEveryError(t *testing.T) {
	path := writeFile(t, "bad.toml", `
[[services]]
name = "a"
listen = "127.0.0.1:7001"
algorithm = "fastest"
[[services.backends]]
address = "127.0.0.1:8001"
weight = 300
colour = "blue"

[[services]]
name = "a"
[[services.backends]]
address = "nonsense"
`)
	code, out, stderr := runBinary(t, "-config", path, "-check")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want exit 1 and nothing on stdout", code, out)
	}
	for _, want := range []string{
		"services[0].algorithm",
		"services[0].backends[0].weight",
		"services[0].backends[0].colour",
		"services[1].name",
		"services[1].listen",
		"services[1].backends[0].address",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, stderr)
		}
	}
}

func TestMissingConfigExit1(t *testing.T) {
	code, _, stderr := runBinary(t, "-config", filepath.Join(t.TempDir(), "absent.toml"), "-check")
	if code != 1 || !strings.Contains(stderr, "absent.toml") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestListenerInUseExit1(t *testing.T) {
	busy := listen(t)
	defer busy.Close()
	backend := startEcho(t)
	path := writeFile(t, "busy.toml", fmt.Sprintf(`
[admin]
listen = ""
[[services]]
name = "busy"
listen = %q
[[services.backends]]
address = %q
`, busy.Addr(), backend.Addr()))
	code, _, stderr := runBinary(t, "-config", path)
	if code != 1 || !strings.Contains(stderr, busy.Addr().String()) || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming %s and the OS error", code, stderr, busy.Addr())
	}
}

// TestProxyReloadAndGracefulShutdown drives one process through its life: it
// proxies, reloads on SIGHUP without touching an established connection,
// rejects a broken file, and on SIGTERM stops accepting at once while the
// established connection finishes.
func TestProxyReloadAndGracefulShutdown(t *testing.T) {
	b1, b2 := startEcho(t), startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	cfg := func(backends ...net.Listener) string {
		s := fmt.Sprintf(`
shutdown_timeout = "20s"
[admin]
listen = %q
[health_check]
interval = "200ms"
[[services]]
name = "echo"
listen = %q
`, adminAddr, svcAddr)
		for i, b := range backends {
			s += fmt.Sprintf("[[services.backends]]\nname = \"b%d\"\naddress = %q\n", i+1, b.Addr())
		}
		return s
	}
	path := writeFile(t, "balance.toml", cfg(b1))
	p := startProcess(t, "-config", path)
	waitListening(t, svcAddr)

	established := dial(t, svcAddr)
	roundTrip(t, established, "before reload")

	// Reload with a second backend: the established connection keeps working.
	os.WriteFile(path, []byte(cfg(b1, b2)), 0o600)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "backend b2 after reload", func() bool {
		var b map[string]any
		return getJSON(adminAddr, "/api/v1/services/echo/backends/b2", &b) == 200
	})
	roundTrip(t, established, "after reload")

	// A broken file changes nothing.
	os.WriteFile(path, []byte("this is [not toml"), 0o600)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "reload rejection in the log", func() bool { return strings.Contains(p.stderr(), "reload rejected") })
	var svc struct{ Backends []struct{ Name string } }
	if code := getJSON(adminAddr, "/api/v1/services/echo", &svc); code != 200 || len(svc.Backends) != 2 {
		t.Fatalf("after a broken reload: status %d, %d backends; want 200 and 2", code, len(svc.Backends))
	}
	roundTrip(t, established, "after broken reload")

	// SIGTERM: no new connection is accepted, the established one still works.
	p.signal(t, syscall.SIGTERM)
	waitFor(t, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", svcAddr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	roundTrip(t, established, "during shutdown")
	established.Close()
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after graceful shutdown, want 0\n%s", code, p.stderr())
	}
}

func TestStateFileSurvivesRestart(t *testing.T) {
	b1, b2 := startEcho(t), startEcho(t)
	dir := t.TempDir()
	adminAddr := freePort(t)
	path := writeFile(t, "balance.toml", fmt.Sprintf(`
state_file = %q
[admin]
listen = %q
[[services]]
name = "echo"
listen = %q
[[services.backends]]
name = "b1"
address = %q
[[services.backends]]
name = "b2"
address = %q
`, filepath.Join(dir, "state.json"), adminAddr, freePort(t), b1.Addr(), b2.Addr()))

	p := startProcess(t, "-config", path)
	waitListening(t, adminAddr)
	if code := postJSON(adminAddr, "/api/v1/services/echo/backends/b1/drain", ""); code != 200 {
		t.Fatalf("drain: status %d", code)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+adminAddr+"/api/v1/services/echo/backends/b2/weight", strings.NewReader(`{"weight": 7}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set weight: %v %v", err, resp)
	}
	resp.Body.Close()
	p.signal(t, syscall.SIGTERM)
	p.wait(t, 15*time.Second)

	p = startProcess(t, "-config", path)
	waitListening(t, adminAddr)
	var b struct {
		State  string
		Weight int
	}
	if code := getJSON(adminAddr, "/api/v1/services/echo/backends/b1", &b); code != 200 || b.State != "draining" {
		t.Fatalf("after restart b1: status %d, state %q; want draining", code, b.State)
	}
	if code := getJSON(adminAddr, "/api/v1/services/echo/backends/b2", &b); code != 200 || b.Weight != 7 {
		t.Fatalf("after restart b2: status %d, weight %d; want 7", code, b.Weight)
	}
	p.signal(t, syscall.SIGTERM)
	p.wait(t, 15*time.Second)

	// A corrupt state file is reported and ignored, never fatal.
	os.WriteFile(filepath.Join(dir, "state.json"), []byte("{garbage"), 0o600)
	p = startProcess(t, "-config", path)
	waitListening(t, adminAddr)
	waitFor(t, "state file complaint", func() bool { return strings.Contains(p.stderr(), "state file") })
	if code := getJSON(adminAddr, "/api/v1/services/echo/backends/b1", &b); code != 200 || b.State == "draining" {
		t.Fatalf("with a corrupt state file b1: status %d, state %q; want not draining", code, b.State)
	}
}

// TestAcceptLoopUnderTinyFDLimit runs the binary with `ulimit -n 64` and opens
// far more connections than it can hold: it must neither exit nor spin, and
// must serve again once they are gone.
func TestAcceptLoopUnderTinyFDLimit(t *testing.T) {
	backend := startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	path := writeFile(t, "fd.toml", fmt.Sprintf(`
[admin]
listen = %q
[log]
access_log = false
[health_check]
enabled = false
[[services]]
name = "fd"
listen = %q
[[services.backends]]
address = %q
`, adminAddr, svcAddr, backend.Addr()))
	p := startShell(t, fmt.Sprintf("ulimit -n 64 && exec %s -config %s", binary, path))
	waitListening(t, svcAddr)

	var conns []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", svcAddr, 2*time.Second)
		if err != nil {
			break // the kernel's backlog is full: that is fine
		}
		conns = append(conns, c)
	}
	cpuBefore := p.cpuTime(t)
	time.Sleep(2 * time.Second) // observation window for spinning, not a timing assertion on our code
	cpuUsed := p.cpuTime(t) - cpuBefore
	if !p.alive() {
		t.Fatalf("balance-l4 exited under fd pressure:\n%s", p.stderr())
	}
	if cpuUsed > time.Second {
		t.Errorf("balance-l4 used %v of CPU in 2s while out of fds: the accept loop spins", cpuUsed)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "serving again", func() bool {
		c, err := net.DialTimeout("tcp", svcAddr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return false
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && line == "ping\n"
	})
	waitFor(t, "a log line about the fd limit", func() bool { return strings.Contains(p.stderr(), "too many open files") })
	var svc struct {
		AcceptErrors int64 `json:"accept_errors"`
	}
	if code := getJSON(adminAddr, "/api/v1/services/fd", &svc); code != 200 || svc.AcceptErrors == 0 {
		t.Errorf("accept_errors = %d (status %d), want the failed accepts counted", svc.AcceptErrors, code)
	}
}

// --- helpers ---

type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	errb bytes.Buffer
	done chan struct{}
	code int
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.Write(b)
}

func (p *process) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

func startProcess(t *testing.T, args ...string) *process {
	return start(t, exec.Command(binary, args...))
}

func startShell(t *testing.T, script string) *process {
	return start(t, exec.Command("bash", "-c", script))
}

func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = p
	cmd.Stderr = p
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.alive() {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("balance-l4 output:\n%s", p.stderr())
		}
	})
	return p
}

func (p *process) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatalf("sending %v: %v", s, err)
	}
}

func (p *process) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		t.Fatalf("balance-l4 did not exit within %v\n%s", limit, p.stderr())
		return -1
	}
}

// cpuTime is the process's user+system CPU time from /proc/PID/stat.
func (p *process) cpuTime(t *testing.T) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading CPU time: %v", err)
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func freePort(t *testing.T) string {
	ln := listen(t)
	defer ln.Close()
	return ln.Addr().String()
}

// startEcho starts an echo server that lives as long as the test.
func startEcho(t *testing.T) net.Listener {
	t.Helper()
	e, err := startCountingEcho(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return e.ln
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("%s: writing: %v", msg, err)
	}
	buf := make([]byte, len(msg)+1)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg+"\n" {
		t.Fatalf("%s: read %q, %v", msg, buf, err)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, addr+" listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// waitFor polls cond for readiness (a process starting, a reload landing): at
// most 15 s, every 50 ms.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func getJSON(addr, path string, v any) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func postJSON(addr, path, body string) int {
	resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDemo runs `balance-l4 -demo` as a newcomer would: the printed dashboard
// shows the demo backends, the printed service answers, Ctrl-C exits 0.
func TestDemo(t *testing.T) {
	p := startProcess(t, "-demo")
	var dashboard, service string
	waitFor(t, "the demo's addresses", func() bool {
		for _, line := range strings.Split(p.stderr(), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "Dashboard:":
				dashboard = f[1]
			case len(f) >= 2 && f[0] == "Service:":
				service = f[1]
			}
		}
		return dashboard != "" && service != ""
	})
	resp, err := http.Get(dashboard)
	if err != nil {
		t.Fatalf("GET %s: %v", dashboard, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"demo-1", "demo-2", "demo-3"} {
		if !strings.Contains(string(page), name) {
			t.Errorf("dashboard does not show %s", name)
		}
	}
	c := dial(t, service)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "hello from demo-") {
		t.Fatalf("demo service greeting %q, %v", greeting, err)
	}
	c.Close()
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("demo exit code %d after Ctrl-C, want 0", code)
	}
}
