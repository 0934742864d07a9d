package config

import (
	"os"
	"path/filepath"
	"testing"
)

// log.access_log_file: any file in an existing directory; a missing
// directory, a path through a file and a directory are errors at -check.
func TestAccessLogFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{filepath.Join(dir, "access.log"), plain} {
		cfg := mustParse(t, withService(`[log]`, `access_log_file = "`+path+`"`))
		if cfg.Log.AccessLogFile != path {
			t.Errorf("AccessLogFile = %q, want %q", cfg.Log.AccessLogFile, path)
		}
	}
	if cfg := mustParse(t, withService()); cfg.Log.AccessLogFile != "" {
		t.Errorf("default AccessLogFile = %q, want \"\" (stderr)", cfg.Log.AccessLogFile)
	}

	for _, c := range []struct {
		name, value, msg string
	}{
		{"missing directory", `"` + filepath.Join(dir, "absent", "access.log") + `"`, "no such file or directory"},
		{"directory through a file", `"` + filepath.Join(plain, "access.log") + `"`, "is not a directory"},
		{"a directory", `"` + dir + `"`, "is a directory"},
		{"not a string", `true`, "must be a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkErrors(t, withService(`[log]`, `access_log_file = `+c.value),
				[]wantErr{{"log.access_log_file", 7, c.msg}})
		})
	}
}
