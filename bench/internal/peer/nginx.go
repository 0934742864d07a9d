package peer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// nginxWorkers is worker_processes: BENCH.md does not say, so "auto", which is
// one per core (2 on the reference machine), nginx's own recommendation.
const nginxWorkers = "auto"

// newNginx runs nginx's stream module. Debian builds it as a dynamic module in a
// separate package (libnginx-mod-stream); without it the peer is absent.
func newNginx(env Env) *procPeer {
	p := &procPeer{
		name:     Nginx,
		env:      env,
		describe: "nginx stream, worker_processes " + nginxWorkers + ", worker_connections 20000, proxy_timeout 1h, proxy_half_close on",
	}
	bin, err := lookPath(env.Nginx, "nginx")
	if err != nil {
		p.absent = err
		return p
	}
	// nginx -V prints its version and build options to stderr.
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		p.absent = fmt.Errorf("%w: nginx -V: %v", ErrAbsent, err)
		return p
	}
	module, err := nginxStreamModule(string(out))
	if err != nil {
		p.absent = err
		return p
	}
	p.describe = firstLine(string(out)) + "; " + p.describe
	p.command = func(dir string, fe Frontends) (*exec.Cmd, error) {
		cfg := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cfg, []byte(NginxConfig(dir, module, fe, env.Backends.Echo, env.Backends.Sink)), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", cfg, err)
		}
		return exec.Command(bin, "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "nginx-error.log")), nil
	}
	return p
}

var modulesPath = regexp.MustCompile(`--modules-path=(\S+)`)

// nginxStreamModule returns the load_module path the stream module needs, "" when
// it is built in, or an ErrAbsent error, from the output of nginx -V.
func nginxStreamModule(v string) (string, error) {
	switch {
	case strings.Contains(v, "--with-stream=dynamic"):
		dir := "/usr/lib/nginx/modules"
		if m := modulesPath.FindStringSubmatch(v); m != nil {
			dir = m[1]
		}
		so := filepath.Join(dir, "ngx_stream_module.so")
		if _, err := os.Stat(so); err != nil {
			return "", fmt.Errorf("%w: nginx stream module %s is not installed (libnginx-mod-stream; bench/run.sh --install)", ErrAbsent, so)
		}
		return so, nil
	case strings.Contains(v, "--with-stream ") || strings.HasSuffix(strings.TrimSpace(v), "--with-stream"):
		return "", nil
	default:
		return "", fmt.Errorf("%w: nginx is built without the stream module", ErrAbsent)
	}
}

// NginxConfig is the configuration of the nginx peer, with its pid file and logs
// in dir; module is the stream module to load, "" when built in.
func NginxConfig(dir, module string, fe Frontends, echo, sink []string) string {
	var b strings.Builder
	if module != "" {
		fmt.Fprintf(&b, "load_module %s;\n", module)
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes %s;
worker_rlimit_nofile 20000;
pid %s;
error_log %s warn;

events {
    worker_connections 20000;
}

stream {
`, nginxWorkers, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx-error.log"))
	for _, svc := range []struct {
		name     string
		listen   string
		backends []string
	}{{"echo", fe.Echo, echo}, {"sink", fe.Sink, sink}} {
		fmt.Fprintf(&b, "    upstream %s_servers {\n", svc.name)
		for _, addr := range svc.backends {
			fmt.Fprintf(&b, "        server %s;\n", addr)
		}
		fmt.Fprintf(&b, "    }\n    server {\n        listen %s;\n        proxy_pass %s_servers;\n", svc.listen, svc.name)
		// Without proxy_half_close nginx ends the session at the client's FIN and the reply is lost.
		b.WriteString("        proxy_connect_timeout 5s;\n        proxy_timeout 1h;\n        proxy_half_close on;\n    }\n")
	}
	b.WriteString("}\n")
	return b.String()
}
