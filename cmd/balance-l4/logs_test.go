package main

// The logs' conventions, in process (colour decision, formats, timestamps,
// the reopened file) and from the built binary (README "Logs").

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/config"
)

// RFC 3339 in UTC with milliseconds.
var (
	jsonTime    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	consoleTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestColorDecision(t *testing.T) {
	for _, c := range []struct {
		terminal bool
		env      map[string]string
		want     bool
	}{
		{true, nil, true},
		{true, map[string]string{"TERM": "xterm-256color"}, true},
		{true, map[string]string{"NO_COLOR": "1"}, false},
		{true, map[string]string{"NO_COLOR": "false"}, false}, // any non-empty value (no-color.org)
		{true, map[string]string{"NO_COLOR": ""}, true},
		{true, map[string]string{"TERM": "dumb"}, false},
		{false, nil, false},
		{false, map[string]string{"TERM": "xterm-256color"}, false},
	} {
		if got := colorDecision(c.terminal, env(c.env)); got != c.want {
			t.Errorf("terminal %v, env %v: colour %v, want %v", c.terminal, c.env, got, c.want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, out := range map[string]io.Writer{"pipe": w, "file": f, "buffer": &bytes.Buffer{}} {
		if isTerminal(out) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}

func TestLoggerFormats(t *testing.T) {
	for _, c := range []struct {
		format string
		color  bool
		escape bool
	}{
		{"console", true, true}, // what a terminal gets
		{"console", false, false},
		{"json", true, false}, // json never, whatever the decision
		{"json", false, false},
	} {
		var buf bytes.Buffer
		log := newLogger(config.Log{Level: "info", Format: c.format}, &buf, c.color)
		log.Info().Dur("shutdown_timeout_ms", 30*time.Second).Msg("hello")
		out := buf.String()
		if got := strings.Contains(out, "\x1b["); got != c.escape {
			t.Errorf("%s, colour %v: escape sequences %v, want %v: %q", c.format, c.color, got, c.escape, out)
		}
		if c.format == "json" {
			var line map[string]any
			if err := json.Unmarshal([]byte(out), &line); err != nil {
				t.Fatalf("json line %q: %v", out, err)
			}
			if ts, _ := line["time"].(string); !jsonTime.MatchString(ts) {
				t.Errorf("time %q, want RFC 3339 UTC with milliseconds", line["time"])
			}
			if v, ok := line["shutdown_timeout_ms"].(float64); !ok || v != 30000 {
				t.Errorf("shutdown_timeout_ms = %v, want 30000", line["shutdown_timeout_ms"])
			}
		} else if !c.color && !consoleTime.MatchString(out) {
			t.Errorf("console line %q does not start with an RFC 3339 UTC time with milliseconds", out)
		}
	}
}

func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, "one")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "two") // still the renamed file, until the reopen
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "three")
	// A reopen that fails keeps the file open before.
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(dir+".gone", dir)
	if err := f.Reopen(); err == nil || !strings.Contains(err.Error(), "log.access_log_file") {
		t.Fatalf("reopen in a missing directory: %v, want an error naming log.access_log_file", err)
	}
	fmt.Fprintln(f, "four")
	os.Rename(dir+".gone", dir)
	for name, want := range map[string]string{path + ".1": "one\ntwo\n", path: "three\nfour\n"} {
		if got, _ := os.ReadFile(name); string(got) != want {
			t.Errorf("%s holds %q, want %q", filepath.Base(name), got, want)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file: %v, mode %v; want 0640", err, fi.Mode())
	}
}

// --- from the built binary ---

// startWithEnv starts the binary with the test's environment, changed by
// set ("" removes a variable). Its stderr is a pipe, never a terminal.
func startWithEnv(t *testing.T, set map[string]string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if _, changed := set[strings.SplitN(kv, "=", 2)[0]]; !changed {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return start(t, cmd)
}

// jsonLines parses every log line; it fails on a line that is not JSON.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func echoConfig(t *testing.T, svcAddr, adminAddr, backend string, logTable string) string {
	return writeFile(t, "balance.toml", fmt.Sprintf(`
shutdown_timeout = "5s"
[admin]
listen = %q
[log]
%s
[health_check]
interval = "100ms"
[[services]]
name = "echo"
listen = %q
[[services.backends]]
name = "b1"
address = %q
`, adminAddr, logTable, svcAddr, backend))
}

// oneConnection makes one proxied round trip and closes it: one access
// line, whose client it returns.
func oneConnection(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	roundTrip(t, c, msg)
	c.Close()
	return c.LocalAddr().String()
}

// TestConsoleLogsPlainOffTerminal: stderr is a pipe here, as under journald
// or docker: no escape sequence, whatever TERM says, with NO_COLOR too.
func TestConsoleLogsPlainOffTerminal(t *testing.T) {
	backend := startEcho(t)
	for _, set := range []map[string]string{
		{"NO_COLOR": "", "TERM": "xterm-256color"},
		{"NO_COLOR": "1", "TERM": "xterm-256color"},
	} {
		svcAddr, adminAddr := freePort(t), freePort(t)
		path := echoConfig(t, svcAddr, adminAddr, backend.Addr().String(), `format = "console"`)
		p := startWithEnv(t, set, "-config", path)
		waitListening(t, svcAddr)
		oneConnection(t, svcAddr, "plain")
		waitFor(t, "the access line", func() bool { return strings.Contains(p.stderr(), "connection closed") })
		p.signal(t, syscall.SIGTERM)
		p.wait(t, 15*time.Second)
		out := p.stderr()
		if strings.ContainsRune(out, 0x1b) {
			t.Errorf("env %v: escape bytes in console logs on a pipe:\n%q", set, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !consoleTime.MatchString(line) {
				t.Errorf("env %v: line without an RFC 3339 UTC time with milliseconds: %q", set, line)
			}
		}
		for _, want := range []string{"duration_ms=", "shutdown_timeout_ms=5000"} {
			if !strings.Contains(out, want) {
				t.Errorf("env %v: console logs lack %q:\n%s", set, want, out)
			}
		}
	}
}

// durationWords mark a field that holds a duration.
var durationWords = []string{"duration", "timeout", "delay", "interval", "wait", "hold", "elapsed", "retry_in", "_for", "latency"}

// TestLogDurationsHaveUnits: a start, traffic, a reload and a stop in json:
// no escape byte, every time to the millisecond, and every duration field a
// number named *_ms; the known ones are there.
func TestLogDurationsHaveUnits(t *testing.T) {
	backend := startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	path := echoConfig(t, svcAddr, adminAddr, backend.Addr().String(), "format = \"json\"\nlevel = \"debug\"")
	// A terminal's TERM, and colour not refused: json has none anyway.
	p := startWithEnv(t, map[string]string{"NO_COLOR": "", "TERM": "xterm-256color"}, "-config", path)
	waitListening(t, svcAddr)
	oneConnection(t, svcAddr, "timed")
	waitFor(t, "a health check and the access line", func() bool {
		s := p.stderr()
		return strings.Contains(s, `"message":"connection closed"`) && strings.Contains(s, `"message":"health check"`)
	})
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(p.stderr(), "configuration reloaded") })
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out := p.stderr()
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("escape bytes in json logs:\n%q", out)
	}
	known := map[string]string{ // field -> the message of a line that must have it
		"duration_ms":         "connection closed",
		"shutdown_timeout_ms": "shutting down: no longer accepting; waiting for connections",
	}
	for _, l := range jsonLines(t, out) {
		if ts, _ := l["time"].(string); !jsonTime.MatchString(ts) {
			t.Errorf("time %q, want RFC 3339 UTC with milliseconds: %v", l["time"], l)
		}
		msg, _ := l["message"].(string)
		for name, v := range l {
			_, isNumber := v.(float64)
			looksLikeDuration := false
			for _, w := range durationWords {
				looksLikeDuration = looksLikeDuration || strings.Contains(name, w)
			}
			if looksLikeDuration && !strings.HasSuffix(name, "_ms") {
				t.Errorf("field %s = %v has no unit in its name (message %q)", name, v, msg)
			}
			if strings.HasSuffix(name, "_ms") && !isNumber {
				t.Errorf("field %s = %v (%T), want a number of milliseconds", name, v, v)
			}
			if known[name] == msg {
				delete(known, name)
			}
		}
		if msg == "health check" {
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("health check line without duration_ms: %v", l)
			}
		}
	}
	for name, msg := range known {
		t.Errorf("no %q line with %s", msg, name)
	}
}

// TestAccessLogFileReopened: with log.access_log_file the access lines go
// there and not to stderr; after a rename, SIGHUP (also with a broken file)
// and POST /api/v1/reload make a new file while the renamed ones keep theirs.
func TestAccessLogFileReopened(t *testing.T) {
	backend := startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	accessPath := filepath.Join(dir, "access.log")
	path := echoConfig(t, svcAddr, adminAddr, backend.Addr().String(),
		fmt.Sprintf("format = \"json\"\naccess_log_file = %q", accessPath))
	good, _ := os.ReadFile(path)
	p := startProcess(t, "-config", path)
	waitListening(t, svcAddr)

	// clients reads the access lines of file: the clients they name.
	clients := func(file string) map[string]bool {
		t.Helper()
		data, _ := os.ReadFile(file)
		data = data[:bytes.LastIndexByte(data, '\n')+1] // whole lines only
		seen := map[string]bool{}
		for _, l := range jsonLines(t, string(data)) {
			if l["message"] != "connection closed" || l["duration_ms"] == nil || l["pid"] == nil {
				t.Fatalf("not an access line in %s: %v", file, l)
			}
			seen[l["client"].(string)] = true
		}
		return seen
	}
	// served makes one connection and waits for its line in the access log file.
	served := func(msg string) string {
		t.Helper()
		client := oneConnection(t, svcAddr, msg)
		waitFor(t, msg+"'s access line", func() bool { return clients(accessPath)[client] })
		return client
	}
	reopens := func() int { return strings.Count(p.stderr(), "access log file reopened") }

	first := served("first")

	// Rotated, then SIGHUP: a new file.
	os.Rename(accessPath, accessPath+".1")
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the reopen", func() bool { return reopens() == 1 })
	second := served("second")

	// A broken file: the reload is rejected, the log file reopened still.
	os.Rename(accessPath, accessPath+".2")
	os.WriteFile(path, []byte("this is [not toml"), 0o600)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the rejected reload", func() bool { return strings.Contains(p.stderr(), "reload rejected") })
	if reopens() != 2 {
		t.Fatalf("a rejected reload did not reopen the access log file:\n%s", p.stderr())
	}
	third := served("third")

	// The admin API's reload reopens too.
	os.WriteFile(path, good, 0o600)
	os.Rename(accessPath, accessPath+".3")
	if code := postJSON(adminAddr, "/api/v1/reload", ""); code != 200 {
		t.Fatalf("POST /api/v1/reload: %d\n%s", code, p.stderr())
	}
	// Its log line may follow the answer: lines are written out by a
	// goroutine of their own (nonBlocking).
	waitFor(t, "POST /api/v1/reload to reopen the access log file", func() bool { return reopens() == 3 })
	fourth := served("fourth")

	// Each renamed file kept its lines and took none after its rename.
	for file, want := range map[string]string{".1": first, ".2": second, ".3": third, "": fourth} {
		got := clients(accessPath + file)
		for _, c := range []string{first, second, third, fourth} {
			if got[c] != (c == want) {
				t.Errorf("access.log%s: line of %s %v, want %v", file, c, got[c], c == want)
			}
		}
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(p.stderr(), "connection closed") {
		t.Errorf("access lines on stderr too, want them in the file only:\n%s", p.stderr())
	}
}

// TestAccessLogFileChecked: -check names a missing directory; a file that
// cannot be opened at start stops the start with exit 1.
func TestAccessLogFileChecked(t *testing.T) {
	backend := startEcho(t)
	missing := filepath.Join(t.TempDir(), "absent", "access.log")
	path := echoConfig(t, freePort(t), freePort(t), backend.Addr().String(), fmt.Sprintf("access_log_file = %q", missing))
	code, _, stderr := runBinary(t, "-config", path, "-check")
	if code != 1 || !strings.Contains(stderr, "log.access_log_file") || !strings.Contains(stderr, "no such file or directory") {
		t.Fatalf("-check: exit %d, stderr %q; want 1 naming log.access_log_file", code, stderr)
	}

	// A dangling link into a missing directory passes the check (its own
	// directory exists) but cannot be created, even by root.
	link := filepath.Join(t.TempDir(), "access.log")
	if err := os.Symlink(missing, link); err != nil {
		t.Fatal(err)
	}
	path = echoConfig(t, freePort(t), freePort(t), backend.Addr().String(), fmt.Sprintf("access_log_file = %q", link))
	code, _, stderr = runBinary(t, "-config", path)
	if code != 1 || !strings.Contains(stderr, "log.access_log_file") {
		t.Fatalf("start: exit %d, stderr %q; want 1 naming log.access_log_file", code, stderr)
	}
}

// TestDurationFieldsNamedMs reads the source: every duration logged with
// zerolog's Dur is named *_ms (the value is a number of milliseconds), so a
// new one cannot slip in as a bare number (README "Logs").
func TestDurationFieldsNamedMs(t *testing.T) {
	dur := regexp.MustCompile(`\.Durs?\(\s*"([^"]*)"`)
	found := 0
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "soak" || d.Name() == "bench" || d.Name() == "tools") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range dur.FindAllSubmatch(src, -1) {
			found++
			if !strings.HasSuffix(string(m[1]), "_ms") {
				t.Errorf("%s: duration field %q is not named *_ms", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 5 {
		t.Fatalf("found %d Dur fields; the scan is broken", found)
	}
}

// stuckWriter blocks every Write until released, then keeps what it gets.
type stuckWriter struct {
	release chan struct{}
	mu      sync.Mutex
	b       bytes.Buffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestLogWritesNeverBlock: with the log's reader stuck, writing ten
// thousand lines returns at once; once it reads again, the lines the ring
// kept come out in order, after a warning that counts the ones dropped.
func TestLogWritesNeverBlock(t *testing.T) {
	const lines = logRing + 2000
	sink := &stuckWriter{release: make(chan struct{})}
	out, closeLog := nonBlocking(sink, droppedLine(config.Log{Format: "json"}, false))
	log := zerolog.New(out)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range lines {
			log.Info().Int("n", i).Msg("line")
		}
	}()
	select {
	case <-wrote:
	case <-time.After(time.Minute): // a liveness bound: blocked writes never return
		t.Fatal("log writes blocked on a stuck reader")
	}
	close(sink.release)
	closeLog()

	var kept, dropped, last int
	last = -1
	for _, line := range strings.Split(strings.TrimSpace(sink.b.String()), "\n") {
		var e struct {
			N       *int   `json:"n"`
			Dropped int    `json:"dropped"`
			Level   string `json:"level"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if e.N == nil {
			if e.Level != "warn" || e.Dropped == 0 {
				t.Fatalf("unexpected line %q", line)
			}
			dropped += e.Dropped
			continue
		}
		if *e.N <= last {
			t.Fatalf("line %d came after line %d", *e.N, last)
		}
		last = *e.N
		kept++
	}
	if dropped == 0 || kept+dropped != lines {
		t.Fatalf("%d lines kept and %d counted as dropped, want %d in all, some dropped", kept, dropped, lines)
	}
	if last != lines-1 {
		t.Fatalf("the last line out is %d, want %d: the newest lines are kept", last, lines-1)
	}
}

// TestStuckStderrDoesNotStallConnections: the access log goes to a stderr
// pipe nobody reads. Thousands of proxied connections, each writing an
// access log line from the copy engine's loop, all succeed, though the
// pipe holds a fraction of their lines; the lines come out once it is read.
func TestStuckStderrDoesNotStallConnections(t *testing.T) {
	backend := startEcho(t)
	svcAddr, adminAddr := freePort(t), freePort(t)
	path := echoConfig(t, svcAddr, adminAddr, backend.Addr().String(), "format = \"json\"\naccess_log = true")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(binary, "-config", path)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	waitListening(t, svcAddr)

	const conns = 3000 // about 900 KB of access log against a 64 KiB pipe
	for range conns {
		oneConnection(t, svcAddr, "x") // a 5 s deadline: a loop stalled on the log fails it
	}
	_ = r.SetReadDeadline(time.Now().Add(time.Minute)) // a liveness bound
	closed, other := 0, []string{}
	sc := bufio.NewScanner(r)
	for closed < conns && sc.Scan() {
		if strings.Contains(sc.Text(), `"message":"connection closed"`) {
			closed++
		} else if len(other) < 10 {
			other = append(other, sc.Text())
		}
	}
	if closed != conns {
		t.Fatalf("%d access log lines read, want %d (%v); other lines:\n%s", closed, conns, sc.Err(), strings.Join(other, "\n"))
	}
}
