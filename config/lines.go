package config

import (
	"sort"
	"strconv"
	"strings"
)

// keyLines maps the indexed path of every table, key and array element of a
// TOML document to the line where it is defined: a table to its header, a key
// to its `key =` line, an array element to where the element starts.
//
// BurntSushi/toml keeps key positions private and without array indices, so
// this walks the source itself. It trusts that the document already parsed
// (it does not validate) and is best effort: it never panics and always ends,
// whatever the input.
func keyLines(src string) map[string]int {
	s := &lineScanner{
		src:    src,
		lines:  make(map[string]int),
		arrays: make(map[string]int),
	}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.newlines = append(s.newlines, i)
		}
	}
	s.pos = len(src) - len(strings.TrimPrefix(src, "\uFEFF"))
	s.document()
	return s.lines
}

type lineScanner struct {
	src      string
	pos      int
	newlines []int // offsets of every '\n', to turn an offset into a line
	lines    map[string]int
	arrays   map[string]int // array of tables (indexed path) -> elements so far
	table    keyPath        // the table the current key/value lines belong to
}

func (s *lineScanner) document() {
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		start := s.pos
		switch {
		case strings.HasPrefix(s.src[s.pos:], "[["):
			s.pos += 2
			s.arrayHeader(s.keys(), start)
		case s.src[s.pos] == '[':
			s.pos++
			s.tableHeader(s.keys(), start)
		default:
			s.keyValue(s.table, start)
		}
		if s.pos == start { // not TOML after all: step over it
			s.pos++
		}
	}
}

// tableHeader handles `[a.b]`: every array of tables on the way means its
// last element, as in TOML.
func (s *lineScanner) tableHeader(segs []string, start int) {
	s.table = s.resolve(segs)
	s.record(s.table, start)
	s.skipPast(']')
}

// arrayHeader handles `[[a.b]]`: a new element of the array a.b.
func (s *lineScanner) arrayHeader(segs []string, start int) {
	if len(segs) == 0 {
		return
	}
	array := s.resolve(segs[:len(segs)-1]).key(segs[len(segs)-1])
	n := s.arrays[array.String()]
	s.arrays[array.String()] = n + 1
	s.record(array, start)
	s.table = array.index(n)
	s.record(s.table, start)
	s.skipPast(']')
}

func (s *lineScanner) resolve(segs []string) keyPath {
	var p keyPath
	for _, seg := range segs {
		p = p.key(seg)
		if n := s.arrays[p.String()]; n > 0 {
			p = p.index(n - 1)
		}
	}
	return p
}

// keyValue handles `a.b = value` inside the table at base.
func (s *lineScanner) keyValue(base keyPath, start int) {
	segs := s.keys()
	if len(segs) == 0 {
		return
	}
	p := base
	for _, seg := range segs {
		p = p.key(seg)
		s.record(p, start)
	}
	s.skipSpace()
	if s.eof() || s.src[s.pos] != '=' {
		return
	}
	s.pos++
	s.skipSpace()
	s.value(p)
}

// value steps over one value, recording the elements of arrays and the keys
// of inline tables.
func (s *lineScanner) value(p keyPath) {
	if s.eof() {
		return
	}
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.multiline(`"""`, true)
	case strings.HasPrefix(rest, `'''`):
		s.multiline(`'''`, false)
	case rest[0] == '"':
		s.quoted('"', true)
	case rest[0] == '\'':
		s.quoted('\'', false)
	case rest[0] == '[':
		s.pos++
		for i := 0; ; {
			s.skipBlank()
			if s.eof() {
				return
			}
			switch s.src[s.pos] {
			case ']':
				s.pos++
				return
			case ',':
				s.pos++
				continue
			}
			start := s.pos
			elem := p.index(i)
			s.record(elem, start)
			s.value(elem)
			i++
			if s.pos == start {
				s.pos++
			}
		}
	case rest[0] == '{':
		s.pos++
		for {
			s.skipBlank()
			if s.eof() {
				return
			}
			switch s.src[s.pos] {
			case '}':
				s.pos++
				return
			case ',':
				s.pos++
				continue
			}
			start := s.pos
			s.keyValue(p, start)
			if s.pos == start {
				s.pos++
			}
		}
	default: // number, boolean, date: runs to a separator
		end := strings.IndexAny(rest, ",]}#\r\n")
		if end < 0 {
			end = len(rest)
		}
		s.pos += end
	}
}

// keys reads a dotted key such as `a."b.c".d` and returns its segments.
func (s *lineScanner) keys() []string {
	var segs []string
	for {
		s.skipSpace()
		if s.eof() {
			return segs
		}
		start := s.pos
		switch c := s.src[s.pos]; {
		case c == '"':
			segs = append(segs, unquoteBasic(s.quoted('"', true)))
		case c == '\'':
			segs = append(segs, s.quoted('\'', false))
		default:
			for !s.eof() && isBareKeyByte(s.src[s.pos]) {
				s.pos++
			}
			if s.pos == start {
				return segs
			}
			segs = append(segs, s.src[start:s.pos])
		}
		s.skipSpace()
		if s.eof() || s.src[s.pos] != '.' {
			return segs
		}
		s.pos++
	}
}

// quoted steps over a one-line string and returns its raw content.
func (s *lineScanner) quoted(q byte, escapes bool) string {
	s.pos++
	start := s.pos
	for !s.eof() {
		c := s.src[s.pos]
		switch {
		case c == q:
			s.pos++
			return s.src[start : s.pos-1]
		case c == '\n':
			return s.src[start:s.pos]
		case c == '\\' && escapes:
			s.pos++
		}
		s.pos++
	}
	if s.pos > len(s.src) {
		s.pos = len(s.src)
	}
	return s.src[start:s.pos]
}

// multiline steps over a multi-line string, delimited by three double or
// three single quotes, which may end with up to two extra quotes.
func (s *lineScanner) multiline(delim string, escapes bool) {
	s.pos += len(delim)
	for !s.eof() {
		if escapes && s.src[s.pos] == '\\' {
			s.pos += 2
			continue
		}
		if strings.HasPrefix(s.src[s.pos:], delim) {
			s.pos += len(delim)
			for extra := 0; extra < 2 && !s.eof() && s.src[s.pos] == delim[0]; extra++ {
				s.pos++
			}
			return
		}
		s.pos++
	}
	s.pos = len(s.src)
}

// skipPast moves past the next c on the current line (the end of a header).
func (s *lineScanner) skipPast(c byte) {
	for !s.eof() && s.src[s.pos] != '\n' {
		if s.src[s.pos] == c {
			s.pos++
			for !s.eof() && s.src[s.pos] == c {
				s.pos++
			}
			return
		}
		s.pos++
	}
}

// skipSpace skips blanks within a line.
func (s *lineScanner) skipSpace() {
	for !s.eof() && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t') {
		s.pos++
	}
}

// skipBlank skips blanks, line ends and comments.
func (s *lineScanner) skipBlank() {
	for !s.eof() {
		switch s.src[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		case '#':
			for !s.eof() && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

// record notes where p is first defined (a table may be extended later on).
func (s *lineScanner) record(p keyPath, offset int) {
	k := p.String()
	if _, ok := s.lines[k]; ok {
		return
	}
	// The line is one more than the number of newlines before offset.
	s.lines[k] = 1 + sort.SearchInts(s.newlines, offset)
}

// unquoteBasic decodes the escapes of a basic-string key; keys with escapes Go
// does not know (TOML's \e) stay as written.
func unquoteBasic(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	if u, err := strconv.Unquote(`"` + raw + `"`); err == nil {
		return u
	}
	return raw
}
