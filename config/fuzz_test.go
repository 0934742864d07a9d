package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that any input gives either a config or Errors, never a
// panic, and that every problem can be found: a key path, or a syntax error's
// line.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../balance.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	for _, seed := range []string{
		"",
		"[[services]]\nname = 'a'\nlisten = '127.0.0.1:1'\n[[services.backends]]\naddress = 'x:1'\nweight = 300\n",
		"services = [{ name = 'a', listen = ':1', backends = [{ address = ':2' }] }]\n",
		"[[services]]\n[[services]]\nname = 'a'\nname = 'b'\n",
		"[health_check]\nsend = '\\x4'\nexpected_status = [1, 'x']\n",
		"[admin]\nlisten = '0.0.0.0:1'\n\"odd key\" = 1\n",
		"x = \"\"\"\n[[services]]\n\"\"\"\ny = [\n1,\n{ a = 1 }]\n",
		"[services]\n[[services.backends]]\n",
		"a = ",
		"[[services]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse([]byte(src))
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without an error")
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		lines := strings.Count(src, "\n") + 1
		for _, e := range errs {
			if e.Path == "" && e.Line < 1 {
				t.Errorf("error without a path or a line: %+v", e)
			}
			if e.Line > lines {
				t.Errorf("line %d beyond the input's %d lines: %+v", e.Line, lines, e)
			}
			if e.Msg == "" {
				t.Errorf("error without a message: %+v", e)
			}
		}
	})
}
