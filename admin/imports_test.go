package admin

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph keeps the admin server on its side of the Controller
// interface: it, its fake and the web assets never depend on the data path
// or the configuration file's types.
func TestImportGraph(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	const module = "github.com/balancel4/balance-l4/"
	out, err := exec.Command(goBin, "list", "-deps", "-test", "-f", "{{.ImportPath}}",
		module+"admin", module+"admin/admintest", module+"web").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"l4", "health", "resilience", "config", "balance", "cmd"}
	for _, dep := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(dep, module)
		if !ok {
			continue
		}
		for _, f := range forbidden {
			if rest == f || strings.HasPrefix(rest, f+"/") {
				t.Errorf("admin depends on %s", dep)
			}
		}
	}
}
