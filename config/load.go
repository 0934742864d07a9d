package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
)

// Load reads, checks and normalises the configuration file at path. The
// admin token falls back to $BALANCE_ADMIN_TOKEN when the file sets none.
// A file that cannot be read is a wrapped OS error; a file with problems
// gives Errors, whose messages start with path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return parse(path, data, os.Getenv)
}

// Parse checks and normalises a configuration held in memory (an embedded
// one, a test's). It does not read the environment: use ParseWithEnv for
// the BALANCE_ADMIN_TOKEN fallback.
func Parse(data []byte) (*Config, error) {
	return parse("", data, nil)
}

// ParseWithEnv is Parse with the environment lookup that Load uses, so a test
// can supply BALANCE_ADMIN_TOKEN without touching the process environment.
// A nil getenv reads nothing.
func ParseWithEnv(data []byte, getenv func(string) string) (*Config, error) {
	return parse("", data, getenv)
}

func parse(file string, data []byte, getenv func(string) string) (*Config, error) {
	src := string(data)
	var doc map[string]any
	if _, err := toml.Decode(src, &doc); err != nil {
		e := syntaxError(err)
		e.File = file
		return nil, Errors{e}
	}
	c := &checker{}
	cfg := c.read(doc, getenv)
	if len(c.errs) == 0 {
		return cfg, nil
	}
	lines := keyLines(src)
	for _, e := range c.errs {
		e.File = file
		e.Line = lineOf(lines, e.key)
	}
	c.errs.sort()
	return nil, c.errs
}

// lineOf finds the line of path, or else of the nearest table around it (a
// missing key is reported at its table's header).
func lineOf(lines map[string]int, path keyPath) int {
	for p := path; len(p) > 0; p = p[:len(p)-1] {
		if line, ok := lines[p.String()]; ok {
			return line
		}
	}
	return 0
}

// syntaxError converts a TOML decoding error: it has a line but no key path.
func syntaxError(err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{Line: max(pe.Position.Line, 1), Msg: "invalid TOML: " + pe.Message}
	}
	return &Error{Line: 1, Msg: fmt.Sprintf("invalid TOML: %v", err)}
}
