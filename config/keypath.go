package config

import (
	"strconv"
	"strings"
)

// keyPath is an indexed key path kept as formatted segments, `services`, `[1]`,
// `backends`, so that its parent is one slice away. A key that is not a bare
// TOML key is quoted, as in the file: `"odd key"`.
type keyPath []string

// key returns the path of key k inside p. It never shares p's backing array.
func (p keyPath) key(k string) keyPath {
	return p.with(formatKey(k))
}

// index returns the path of element i of the array at p.
func (p keyPath) index(i int) keyPath {
	return p.with("[" + strconv.Itoa(i) + "]")
}

func (p keyPath) with(seg string) keyPath {
	out := make(keyPath, len(p)+1)
	copy(out, p)
	out[len(p)] = seg
	return out
}

func (p keyPath) String() string {
	var b strings.Builder
	for i, seg := range p {
		if i > 0 && seg[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func formatKey(k string) string {
	if isBareKey(k) {
		return k
	}
	return strconv.Quote(k)
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBareKeyByte(k[i]) {
			return false
		}
	}
	return true
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
