package main

// What a new operator meets first: no configuration file, and an admin port
// that something else holds.

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingConfigSaysWhatToDo: without a file, the error says how to name
// one and how to try balance-l4 without one, for the default path and for
// -config alike.
func TestMissingConfigSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		nil, // ./balance.toml, which this directory does not have
		{"-check"},
		{"-config", filepath.Join(dir, "absent.toml")},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("%v: %v, want exit 1; stderr %q", args, err, stderr.String())
		}
		want := "balance.toml"
		if len(args) == 2 && args[0] == "-config" {
			want = args[1]
		}
		for _, s := range []string{"no such file", "no configuration file at " + want, "-config PATH", "-demo"} {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("%v: stderr does not say %q:\n%s", args, s, stderr.String())
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: stdout %q, want nothing", args, stdout.String())
		}
	}
}

// TestAdminPortInUseFoundFirst: the admin listener is opened before any
// service's, so with both ports taken the error is the admin server's, and it
// names the address once.
func TestAdminPortInUseFoundFirst(t *testing.T) {
	busyAdmin, busyService := listen(t), listen(t)
	defer busyAdmin.Close()
	defer busyService.Close()
	backend := startEcho(t)
	path := writeFile(t, "admin-busy.toml", fmt.Sprintf(`
[admin]
listen = %q
[[services]]
name = "web"
listen = %q
[[services.backends]]
address = %q
`, busyAdmin.Addr(), busyService.Addr(), backend.Addr()))
	code, _, stderr := runBinary(t, "-config", path)
	admin := busyAdmin.Addr().String()
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "admin server: listening on "+admin+": bind: address already in use") {
		t.Errorf("stderr does not name the admin address and the OS error:\n%s", stderr)
	}
	if n := strings.Count(stderr, admin); n != 1 {
		t.Errorf("the admin address %s appears %d times, want once:\n%s", admin, n, stderr)
	}
	if strings.Contains(stderr, busyService.Addr().String()) {
		t.Errorf("a service listener was opened before the admin one:\n%s", stderr)
	}
}
