package sni

import (
	"errors"
	"fmt"
	"strings"
)

// Pattern checks a server name pattern as a configuration file writes it:
// an exact host name ("db.example.com") or one leading wildcard label
// ("*.example.com"). It returns the pattern in the form Routes takes
// (lower case), or why it is not one.
func Pattern(p string) (string, error) {
	name, wild := strings.CutPrefix(p, "*.")
	if strings.Contains(name, "*") {
		return "", errors.New("a wildcard may only be the whole first label, as in *.example.com")
	}
	if err := checkHostName(name); err != nil {
		return "", err
	}
	name = strings.ToLower(name)
	if wild {
		return "*." + name, nil
	}
	return name, nil
}

func checkHostName(name string) error {
	switch {
	case name == "":
		return errors.New("must name a host")
	case strings.HasSuffix(name, "."):
		return errors.New("must not end with a dot")
	case len(name) > 253:
		return fmt.Errorf("must be at most 253 characters, got %d", len(name))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return errors.New("must not have an empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q is longer than 63 characters", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("may hold letters, digits, '-', '_' and dots only, got %q", name)
			}
		}
	}
	return nil
}

// Routes maps server names to values of T: an exact name first, else the
// longest wildcard that matches, where "*.example.com" matches every name
// ending in ".example.com" (a.example.com, a.b.example.com) but not
// example.com itself. Names compare case-insensitively. A Routes is built
// once with Add and then only read, by any number of goroutines.
type Routes[T any] struct {
	exact map[string]T
	wild  map[string]T // by suffix, with its leading dot: ".example.com"
}

// Add routes pattern (as Pattern returns it) to v. It fails when the
// pattern is already routed.
func (r *Routes[T]) Add(pattern string, v T) error {
	if r.exact == nil {
		r.exact, r.wild = map[string]T{}, map[string]T{}
	}
	m, key := r.exact, pattern
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		m, key = r.wild, suffix
	}
	if _, dup := m[key]; dup {
		return fmt.Errorf("sni: %q is routed twice", pattern)
	}
	m[key] = v
	return nil
}

// Match returns the value the name routes to. name is as a client sent it:
// any case, perhaps with a trailing dot.
func (r *Routes[T]) Match(name string) (v T, ok bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" {
		return v, false
	}
	if v, ok := r.exact[name]; ok {
		return v, true
	}
	// The longest suffix first: drop one label at a time from the left.
	for i := strings.IndexByte(name, '.'); i >= 0; {
		if v, ok := r.wild[name[i:]]; ok {
			return v, true
		}
		j := strings.IndexByte(name[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return v, false
}
