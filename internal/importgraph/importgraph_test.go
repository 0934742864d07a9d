// Package importgraph holds the test that keeps the import graph one-way:
// cmd wires everything; app joins l4 and admin; admin reads status views only;
// l4 owns the data path; health, resilience, balance and proxyproto are leaves
// that know nothing of HTTP handlers, TCP splicing or the file format.
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
	"status":     {"config", "l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web"},
	"config":     {"l4", "admin", "app", "health", "resilience", "balance", "proxyproto", "web", "status"},
	"resilience": {"config", "l4", "admin", "app", "health", "balance", "proxyproto", "web", "status", "net/http", "net"},
	"health":     {"config", "l4", "admin", "app", "resilience", "balance", "proxyproto", "web", "status", "github.com/labstack/echo/v4"},
	"balance":    {"config", "l4", "admin", "app", "health", "resilience", "proxyproto", "web", "status", "net/http"},
	"proxyproto": {"config", "l4", "admin", "app", "health", "resilience", "balance", "web", "status", "net/http"},
	"l4":         {"admin", "app", "web", "demo", "github.com/labstack/echo/v4", "github.com/prometheus/client_golang/prometheus"},
	"admin":      {"l4", "app", "config", "health", "resilience", "balance", "proxyproto", "demo"},
	"web":        {"l4", "app", "config", "health", "resilience", "balance", "proxyproto", "admin", "status"},
	"app":        {"demo"},
	"demo":       {"l4", "app", "admin", "config", "health", "resilience", "balance", "proxyproto", "web", "status"},
}

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
