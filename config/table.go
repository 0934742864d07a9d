package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// checker collects every problem found while a decoded document is read.
type checker struct {
	fleet bool // the file has a [fleet] with endpoints (for discovery type "etcd")
	errs  Errors
}

func (c *checker) add(p keyPath, format string, args ...any) {
	c.errs = append(c.errs, &Error{Path: p.String(), Msg: fmt.Sprintf(format, args...), key: p})
}

// table reads one decoded TOML table. Each accessor names a known key and
// stores its value only when the key is present, so reading a table over a
// copy of the inherited values merges key by key; finish reports every key
// no accessor named.
type table struct {
	c     *checker
	path  keyPath
	m     map[string]any
	known []string
}

func (c *checker) table(p keyPath, m map[string]any) *table {
	return &table{c: c, path: p, m: m}
}

// lookup marks key as known and returns its value, if present.
func (t *table) lookup(key string) (any, bool) {
	t.known = append(t.known, key)
	v, ok := t.m[key]
	return v, ok
}

// has reports whether key is present, without marking it known.
func (t *table) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

// finish reports the keys no accessor asked for, suggesting a known key that
// is a typo away.
func (t *table) finish() {
	for _, key := range sortedKeys(t.m) {
		if slices.Contains(t.known, key) {
			continue
		}
		if near := nearest(key, t.known); near != "" {
			t.c.add(t.path.key(key), "unknown key (did you mean %q?)", near)
			continue
		}
		t.c.add(t.path.key(key), "unknown key")
	}
}

// sub returns the table at key: empty when absent (so the caller reads
// defaults through it), present reports whether it was in the file.
func (t *table) sub(key string) (sub *table, present bool) {
	v, ok := t.lookup(key)
	p := t.path.key(key)
	if !ok {
		return t.c.table(p, nil), false
	}
	m, isTable := v.(map[string]any)
	if !isTable {
		t.c.add(p, "must be a table, got %s", describe(v))
		return t.c.table(p, nil), false
	}
	return t.c.table(p, m), true
}

// tables returns the array of tables at key ([[key]] or key = [{...}]),
// leaving out (and reporting) elements that are not tables.
func (t *table) tables(key string) []*table {
	v, ok := t.lookup(key)
	if !ok {
		return nil
	}
	p := t.path.key(key)
	var elems []any
	switch v := v.(type) {
	case []map[string]any:
		for _, m := range v {
			elems = append(elems, m)
		}
	case []any:
		elems = v
	default:
		t.c.add(p, "must be an array of tables ([[%s]]), got %s", key, describe(v))
		return nil
	}
	out := make([]*table, 0, len(elems))
	for i, e := range elems {
		m, isTable := e.(map[string]any)
		if !isTable {
			t.c.add(p.index(i), "must be a table, got %s", describe(e))
			continue
		}
		out = append(out, t.c.table(p.index(i), m))
	}
	return out
}

func (t *table) str(key string, dst *string) bool {
	v, ok := t.lookup(key)
	if !ok {
		return false
	}
	s, isString := v.(string)
	if !isString {
		t.c.add(t.path.key(key), "must be a string, got %s", describe(v))
		return false
	}
	*dst = s
	return true
}

// required reads a string that has no default and may not be empty.
func (t *table) required(key string, dst *string) bool {
	if !t.has(key) {
		t.lookup(key)
		t.c.add(t.path.key(key), "missing required key")
		return false
	}
	if !t.str(key, dst) {
		return false
	}
	if *dst == "" {
		t.c.add(t.path.key(key), "must not be empty")
		return false
	}
	return true
}

func (t *table) enum(key string, dst *string, allowed ...string) bool {
	var s string
	if !t.str(key, &s) {
		return false
	}
	if !slices.Contains(allowed, s) {
		t.c.add(t.path.key(key), "must be one of %s, got %q", strings.Join(allowed, " | "), s)
		return false
	}
	*dst = s
	return true
}

func (t *table) boolean(key string, dst *bool) bool {
	v, ok := t.lookup(key)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		t.c.add(t.path.key(key), "must be a boolean (true or false), got %s", describe(v))
		return false
	}
	*dst = b
	return true
}

// noMax is integer's upper bound when there is none.
const noMax = math.MaxInt32

func (t *table) integer(key string, dst *int, lo, hi int) bool {
	v, ok := t.lookup(key)
	if !ok {
		return false
	}
	n, isInt := v.(int64)
	if !isInt {
		t.c.add(t.path.key(key), "must be an integer, got %s", describe(v))
		return false
	}
	if !checkInt(t.c, t.path.key(key), n, lo, hi) {
		return false
	}
	*dst = int(n)
	return true
}

func checkInt(c *checker, p keyPath, n int64, lo, hi int) bool {
	if n >= int64(lo) && n <= int64(hi) {
		return true
	}
	switch {
	case hi != noMax:
		c.add(p, "must be between %d and %d, got %d", lo, hi, n)
	case lo == 0:
		c.add(p, "must not be negative, got %d", n)
	default:
		c.add(p, "must be at least %d, got %d", lo, n)
	}
	return false
}

// float reads a number; an integer (multiplier = 2) is taken as a float.
func (t *table) float(key string, dst *float64) bool {
	v, ok := t.lookup(key)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.c.add(t.path.key(key), "must be a finite number, got %v", v)
			return false
		}
		*dst = v
	case int64:
		*dst = float64(v)
	default:
		t.c.add(t.path.key(key), "must be a number, got %s", describe(v))
		return false
	}
	return true
}

// ratio reads a number in [0, 1].
func (t *table) ratio(key string, dst *float64) bool {
	var f float64
	if !t.float(key, &f) {
		return false
	}
	if f < 0 || f > 1 {
		t.c.add(t.path.key(key), "must be between 0 and 1, got %v", f)
		return false
	}
	*dst = f
	return true
}

// atLeast reads a number no smaller than lo.
func (t *table) atLeast(key string, dst *float64, lo float64) bool {
	var f float64
	if !t.float(key, &f) {
		return false
	}
	if f < lo {
		t.c.add(t.path.key(key), "must be at least %v, got %v", lo, f)
		return false
	}
	*dst = f
	return true
}

// durationRule says which durations make sense for a key.
type durationRule int

const (
	nonNegative durationRule = iota // 0 is meaningful ("never", "off", "at once")
	positive                        // 0 is not
)

// duration reads a Go duration string such as "250ms" or "1m".
func (t *table) duration(key string, dst *time.Duration, rule durationRule) bool {
	v, ok := t.lookup(key)
	if !ok {
		return false
	}
	p := t.path.key(key)
	s, isString := v.(string)
	if !isString {
		t.c.add(p, `must be a duration string such as "250ms", "10s" or "1m", got %s`, describe(v))
		return false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.c.add(p, `must be a duration such as "250ms", "10s" or "1m", got %q`, s)
		return false
	}
	switch {
	case d < 0:
		t.c.add(p, "must not be negative, got %s", s)
		return false
	case d == 0 && rule == positive:
		t.c.add(p, "must be greater than 0, got %s", s)
		return false
	}
	*dst = d
	return true
}

// statusCodes reads a non-empty array of HTTP status codes.
func (t *table) statusCodes(key string, dst *[]int) bool {
	return readArray(t, key, "status codes such as [200, 204]", dst, func(p keyPath, e any) (int, bool) {
		n, isInt := e.(int64)
		if !isInt {
			t.c.add(p, "must be an integer, got %s", describe(e))
			return 0, false
		}
		return int(n), checkInt(t.c, p, n, 100, 599)
	}, "must list at least one status code")
}

// describe names a decoded TOML value's type, with the value when short.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			return "a string"
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case time.Time:
		return "a date/time"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// nearest returns the known key at most two edits from key, if exactly one is.
func nearest(key string, known []string) string {
	best, bestDist, ties := "", 3, 0
	for _, k := range known {
		d := editDistance(key, k)
		switch {
		case d < bestDist:
			best, bestDist, ties = k, d, 0
		case d == bestDist && k != best:
			ties++
		}
	}
	if ties > 0 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between two short keys.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// strList reads an array of strings.
func (t *table) strList(key string, dst *[]string) bool {
	return readArray(t, key, "strings", dst, func(p keyPath, e any) (string, bool) {
		str, isString := e.(string)
		if !isString {
			t.c.add(p, "must be a string, got %s", describe(e))
		}
		return str, isString
	}, "")
}

// readArray reads key as an array whose elements elem checks and converts
// (reporting a problem at the element's path); what names the elements,
// and ifEmpty, when set, makes an empty array an error. dst is set only
// when every element is valid.
func readArray[T any](t *table, key, what string, dst *[]T, elem func(keyPath, any) (T, bool), ifEmpty string) bool {
	v, ok := t.lookup(key)
	if !ok {
		return false
	}
	p := t.path.key(key)
	elems, isArray := v.([]any)
	if !isArray {
		t.c.add(p, "must be an array of %s, got %s", what, describe(v))
		return false
	}
	if len(elems) == 0 && ifEmpty != "" {
		t.c.add(p, "%s", ifEmpty)
		return false
	}
	out := make([]T, 0, len(elems))
	valid := true
	for i, e := range elems {
		x, good := elem(p.index(i), e)
		valid = valid && good
		out = append(out, x)
	}
	if valid {
		*dst = out
	}
	return valid
}
