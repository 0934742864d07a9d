package deploy

// The container image cannot be built where the tests run (no container
// engine), so this reads the Dockerfile and does what it says: builds every
// binary with its RUN line's environment and flags, checks the file the image
// runs with, and runs the HEALTHCHECK's command against a real /healthz.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/config"
)

// testVersion is given to the build as --build-arg VERSION would be.
const testVersion = "v0.0.0-dockerfile-test"

func TestDockerfile(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	bin := t.TempDir()

	// Every binary the runtime stage copies from the build stage, built by its
	// RUN line with the same environment and flags; only -o points here.
	installed := map[string]string{} // path in the image -> path here
	for _, run := range df.builds {
		out := run.output()
		local := filepath.Join(bin, path.Base(out))
		dst, ok := df.fromBuild[out]
		if !ok {
			t.Fatalf("RUN builds %s, which no COPY --from=build takes into the image", out)
		}
		installed[dst] = local
		args := slices.Clone(run.args)
		args[slices.Index(args, "-o")+1] = local
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), run.env...)
		if outb, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", strings.Join(run.env, " "), args, err, outb)
		}
		checkStatic(t, local)
	}
	lb, ok := installed[df.entrypoint[0]]
	if !ok {
		t.Fatalf("ENTRYPOINT %s is not a binary built in the build stage", df.entrypoint[0])
	}

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(lb, "-version").Output()
		if err != nil || strings.TrimSpace(string(out)) != "balance-l4 "+testVersion {
			t.Fatalf("-version: %q, %v; want the build's VERSION %q", out, err, testVersion)
		}
	})

	// The file the image runs with: CMD's -config, put there by a COPY.
	i := slices.Index(df.cmd, "-config")
	if i < 0 || i+1 == len(df.cmd) {
		t.Fatalf("CMD %q has no -config PATH", df.cmd)
	}
	src, ok := df.copied[df.cmd[i+1]]
	if !ok {
		t.Fatalf("no COPY puts a file at %s, which CMD runs with", df.cmd[i+1])
	}
	defaultConfig := filepath.Join(root, src)

	t.Run("default configuration needs a token", func(t *testing.T) {
		code, stdout, stderr := run(t, lb, withoutTokens(), "-config", defaultConfig, "-check")
		if code != 1 || stdout != "" {
			t.Fatalf("-check without BALANCE_ADMIN_TOKEN: exit %d, stdout %q; want exit 1 and nothing on stdout", code, stdout)
		}
		for _, want := range []string{"admin.listen", "set BALANCE_ADMIN_TOKEN in the environment"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("-check without BALANCE_ADMIN_TOKEN does not say %q:\n%s", want, stderr)
			}
		}
		code, stdout, stderr = run(t, lb, append(withoutTokens(), config.TokenEnv+"=s3cret"), "-config", defaultConfig, "-check")
		if code != 0 || strings.TrimSpace(stdout) != "configuration OK" {
			t.Fatalf("-check with BALANCE_ADMIN_TOKEN: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	// The HEALTHCHECK asks the admin server of the default configuration, on
	// the port the image exposes.
	data, err := os.ReadFile(defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseWithEnv(data, func(k string) string {
		if k == config.TokenEnv {
			return "s3cret"
		}
		return ""
	})
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	host, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf("admin.listen = %q in %s: a container's admin server must listen on every interface", cfg.Admin.Listen, src)
	}
	for _, s := range cfg.Services {
		if h, _, _ := net.SplitHostPort(s.Listen); h != "" && !net.ParseIP(h).IsUnspecified() {
			t.Errorf("service %q listens on %s in %s: not reachable from outside a container", s.Name, s.Listen, src)
		}
	}
	if !slices.Contains(df.expose, port) {
		t.Errorf("EXPOSE %v does not include the admin port %s", df.expose, port)
	}
	if len(df.healthcheck) != 2 {
		t.Fatalf("HEALTHCHECK CMD %q: want [binary, URL]", df.healthcheck)
	}
	hc, ok := installed[df.healthcheck[0]]
	if !ok {
		t.Fatalf("HEALTHCHECK runs %s, which is not a binary built in the build stage", df.healthcheck[0])
	}
	u, err := url.Parse(df.healthcheck[1])
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != port || u.Path != "/healthz" {
		t.Errorf("HEALTHCHECK asks %q; want http://127.0.0.1:%s/healthz, the admin server of %s", df.healthcheck[1], port, src)
	}

	t.Run("healthcheck against a real /healthz", func(t *testing.T) {
		adminAddr := freePort(t)
		conf := filepath.Join(t.TempDir(), "balance.toml")
		if err := os.WriteFile(conf, fmt.Appendf(nil, "[admin]\nlisten = %q\ntoken = \"s3cret\"\n", adminAddr), 0o600); err != nil {
			t.Fatal(err)
		}
		p := exec.Command(lb, "-config", conf)
		var logs bytes.Buffer
		p.Stderr = &logs
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- p.Wait() }()
		defer func() {
			p.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("balance-l4's log:\n%s", logs.String())
			}
		}()
		healthz := "http://" + adminAddr + "/healthz"
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, _, stderr := run(t, hc, nil, healthz)
			if code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("healthcheck %s never passed; last: exit %d, %s", healthz, code, stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Anything but a 200 fails it: here a 401, since only /healthz is open.
		if code, _, stderr := run(t, hc, nil, "http://"+adminAddr+"/api/v1/services"); code != 1 || !strings.Contains(stderr, "401") {
			t.Errorf("healthcheck of a 401: exit %d, stderr %q; want exit 1 naming the status", code, stderr)
		}
		p.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Fatal("balance-l4 did not stop on SIGINT")
		}
		exited <- nil // for the deferred cleanup
		if code, _, _ := run(t, hc, nil, healthz); code != 1 {
			t.Errorf("healthcheck with nothing listening: exit %d, want 1", code)
		}
	})

	// The image as it runs: its own file, admin on 0.0.0.0:9090, and the
	// HEALTHCHECK's exact command, in a network namespace of their own so the
	// port is free whatever else runs here.
	t.Run("the image's command in a network namespace", func(t *testing.T) {
		if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
			t.Skipf("no network namespace for this user (unshare -rn: %v)", err)
		}
		script := `ip link set lo up || exit 2
"$0" "$@" & pid=$!
i=0
while [ $i -lt 150 ]; do
	if "$HC" "$HC_URL" 2>/dev/null; then kill -TERM $pid; wait $pid; exit $?; fi
	i=$((i+1)); sleep 0.1
done
"$HC" "$HC_URL"; kill -KILL $pid; exit 3`
		args := append([]string{"-rn", "sh", "-c", script, lb}, df.cmd...)
		args[slices.Index(args, df.cmd[i+1])] = defaultConfig
		env := append(withoutTokens(), config.TokenEnv+"=s3cret", "HC="+hc, "HC_URL="+df.healthcheck[1])
		code, _, stderr := run(t, "unshare", env, args...)
		if code != 0 {
			t.Fatalf("exit %d (0: healthy, then stopped cleanly; 2: no loopback; 3: never healthy):\n%s", code, stderr)
		}
	})
}

// checkStatic fails unless the binary needs no dynamic loader or shared
// library: the runtime image (distroless static) has no libc.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not a static binary", filepath.Base(bin))
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", filepath.Base(bin), libs)
	}
}

// dockerfile is what the test needs of the Dockerfile.
type dockerfile struct {
	builds      []goBuild         // the build stage's RUN ... go build lines
	fromBuild   map[string]string // COPY --from=build: build stage path -> image path
	copied      map[string]string // COPY from the context: image path -> context path
	expose      []string
	healthcheck []string // exec form after CMD
	entrypoint  []string
	cmd         []string
}

// goBuild is one RUN line that runs go build: its leading VAR=value
// assignments and go's arguments.
type goBuild struct {
	env  []string
	args []string // "build", flags, packages
}

func (b goBuild) output() string {
	i := slices.Index(b.args, "-o")
	if i < 0 || i+1 == len(b.args) {
		return ""
	}
	return b.args[i+1]
}

// parseDockerfile reads the instructions the image depends on. It knows
// line continuations, comments, ARG defaults (VERSION is the test's), and
// shell words in double quotes with ${VAR}; anything it does not know in a
// RUN go build line fails the test rather than being guessed at.
func parseDockerfile(t *testing.T, file string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{fromBuild: map[string]string{}, copied: map[string]string{}}
	args := map[string]string{}
	stage := ""
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if rest, cont := strings.CutSuffix(trimmed, `\`); cont {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			stage = ""
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stage = f[2]
			}
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			if name == "VERSION" {
				def = testVersion
			}
			args[name] = strings.Trim(def, `"`)
		case "RUN":
			if stage != "build" || !strings.Contains(rest, "go build") {
				continue
			}
			words, err := shellWords(rest, args)
			if err != nil {
				t.Fatalf("RUN %s: %v", rest, err)
			}
			var b goBuild
			for len(words) > 0 && strings.Contains(words[0], "=") {
				b.env = append(b.env, words[0])
				words = words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" || slices.ContainsFunc(words, func(w string) bool { return w == "&&" || w == ";" || w == "|" }) {
				t.Fatalf("RUN %s: want one [VAR=value ...] go build ... per line", rest)
			}
			b.args = words[1:]
			if b.output() == "" {
				t.Fatalf("RUN %s: no -o", rest)
			}
			df.builds = append(df.builds, b)
		case "COPY":
			f := strings.Fields(rest)
			if len(f) > 0 && f[0] == "--from=build" {
				dst := f[len(f)-1]
				for _, src := range f[1 : len(f)-1] {
					if strings.HasSuffix(dst, "/") {
						df.fromBuild[src] = dst + path.Base(src)
					} else {
						df.fromBuild[src] = dst
					}
				}
			} else if len(f) == 2 && !strings.HasPrefix(f[0], "--") {
				df.copied[f[1]] = f[0]
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				df.expose = append(df.expose, strings.TrimSuffix(p, "/tcp"))
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, "CMD ")
			if !ok || json.Unmarshal([]byte(strings.TrimSpace(cmd)), &df.healthcheck) != nil {
				t.Fatalf("HEALTHCHECK %s: want the exec form CMD [\"binary\", \"URL\"] (the image has no shell)", rest)
			}
		case "ENTRYPOINT":
			if json.Unmarshal([]byte(rest), &df.entrypoint) != nil || len(df.entrypoint) == 0 {
				t.Fatalf("ENTRYPOINT %s: want the exec form", rest)
			}
		case "CMD":
			if json.Unmarshal([]byte(rest), &df.cmd) != nil {
				t.Fatalf("CMD %s: want the exec form", rest)
			}
		}
	}
	if len(df.builds) == 0 || df.entrypoint == nil || df.cmd == nil || df.healthcheck == nil {
		t.Fatalf("%s: want RUN go build lines in a stage named build, ENTRYPOINT, CMD and HEALTHCHECK", file)
	}
	return df
}

// shellWords splits a shell command line into words: blanks separate them,
// double quotes group, ${NAME} and $NAME expand from vars. Single quotes,
// backslashes, backquotes and $( are refused: a RUN line that needs them is
// beyond what this test reads.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '\\' || c == '`':
			return nil, fmt.Errorf("%q at byte %d: not read by this test", c, i)
		case c == '$':
			name := ""
			switch {
			case strings.HasPrefix(s[i:], "${"):
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, errors.New("unclosed ${")
				}
				name, i = s[i+2:i+end], i+end
			default:
				j := i + 1
				for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
					j++
				}
				if j == i+1 {
					return nil, fmt.Errorf("$ at byte %d: not read by this test", i)
				}
				name, i = s[i+1:j], j-1
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("${%s} is no ARG", name)
			}
			w.WriteString(v)
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unclosed double quote")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// run runs a command to its end; env nil means this process's environment.
func run(t *testing.T, name string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running %s %v: %v", name, args, err)
	}
	return code, out.String(), errb.String()
}

// withoutTokens is this process's environment without the admin tokens, so
// that the default configuration is judged as a container without them.
func withoutTokens() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, config.TokenEnv+"=") || strings.HasPrefix(kv, config.ReadTokenEnv+"=")
	})
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
