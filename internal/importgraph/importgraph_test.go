// Package importgraph holds the test that keeps the import graph one-way:
// cmd wires everything; app joins l4, admin and fleet; admin reads status views
// only; fleet talks to etcd and knows nothing of HTTP handlers or the data path;
// l4 owns the data path; upgrade hands sockets to a new process and knows
// none of them; health, resilience, balance, proxyproto and sni are leaves
// that know nothing of HTTP handlers, TCP splicing or the file format;
// internal/rawconnect, the raw connect l4 and health share, imports nothing
// of the project at all.
package importgraph

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/balancel4/balance-l4"

// forbidden lists, for each package, the project packages (and a few outside
// ones) it must not depend on, directly or transitively.
var forbidden = map[string][]string{
	"status":     {"config", "l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"config":     {"l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web", "status", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"resilience": {"config", "l4", "admin", "app", "health", "balance", "proxyproto", "web", "status", "net/http", "net", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"health":     {"config", "l4", "admin", "app", "resilience", "balance", "proxyproto", "web", "status", "github.com/labstack/echo/v4", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"balance":    {"config", "l4", "admin", "app", "health", "resilience", "proxyproto", "web", "status", "net/http", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"sni":        {"config", "l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web", "status", "net", "net/http", "fleet", "go.etcd.io/etcd/client/v3"},
	"proxyproto": {"config", "l4", "admin", "app", "health", "resilience", "balance", "web", "status", "net/http", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"l4":         {"admin", "app", "web", "demo", "github.com/labstack/echo/v4", "github.com/prometheus/client_golang/prometheus", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"admin":      {"l4", "app", "config", "health", "resilience", "balance", "proxyproto", "demo", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"web":        {"l4", "app", "config", "health", "resilience", "balance", "proxyproto", "admin", "status", "fleet", "go.etcd.io/etcd/client/v3", "discovery"},
	"app":        {"demo"},
	"fleet":      {"l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web", "demo", "github.com/labstack/echo/v4", "discovery"},
	"discovery":  {"l4", "admin", "app", "fleet", "health", "resilience", "balance", "proxyproto", "web", "demo", "github.com/labstack/echo/v4", "go.etcd.io/etcd/client/v3"},
	"demo":       {"l4", "app", "admin", "config", "health", "resilience", "balance", "proxyproto", "web", "status"},
	"upgrade":    {"config", "l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web", "status", "fleet", "demo", "github.com/labstack/echo/v4", "go.etcd.io/etcd/client/v3"},
}

// leaves are the packages that must import nothing of the project, however
// it grows: what several packages share sits below all of them.
var leaves = []string{"internal/rawconnect"}

func TestImportGraphIsOneWay(t *testing.T) {
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range bad {
			path := b
			if !strings.Contains(b, ".") && !isStd(b) {
				path = module + "/" + b
			}
			if deps[path] {
				t.Errorf("%s must not depend on %s", pkg, path)
			}
		}
	}
}

func isStd(p string) bool { return p == "net" || strings.HasPrefix(p, "net/") }

func TestLeavesImportNothingOfTheProject(t *testing.T) {
	for _, pkg := range leaves {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, d := range strings.Fields(string(out)) {
			if d != module+"/"+pkg && (d == module || strings.HasPrefix(d, module+"/")) {
				t.Errorf("%s must import nothing of the project, imports %s", pkg, d)
			}
		}
	}
}
