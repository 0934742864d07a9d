package config

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// decodeEscapes turns the escapes SPEC §2 allows in a tcp check's `send`
// (\r \n \t \\ and \xNN) into bytes; any other backslash is an error.
//
// It runs on the string TOML already decoded, so 'PING\r\n' (literal) and
// "PING\r\n" (basic) send the same bytes. A basic string decodes "\xff" to
// the character U+00FF, two bytes in UTF-8: to send the byte 0xFF write
// '\xff' or "\\xff".
func decodeEscapes(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New(`ends with a lone backslash (allowed escapes: \r \n \t \\ \xNN)`)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf(`\x at byte %d needs two hex digits`, i-1)
			}
			hi, okHi := hexDigit(s[i+1])
			lo, okLo := hexDigit(s[i+2])
			if !okHi || !okLo {
				return nil, fmt.Errorf(`\x at byte %d needs two hex digits, got %q`, i-1, s[i+1:i+3])
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, fmt.Errorf(`invalid escape \%c at byte %d (allowed: \r \n \t \\ \xNN)`, r, i-1)
		}
	}
	return out, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
