package config

import (
	"slices"
	"strings"
	"testing"
)

func TestDecodeEscapes(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr string
	}{
		{"", nil, ""},
		{"plain", []byte("plain"), ""},
		{`PING\r\n`, []byte("PING\r\n"), ""},
		{`\t\\`, []byte("\t\\"), ""},
		{`\x00\xFf\x7e`, []byte{0, 0xff, 0x7e}, ""},
		{"raw\r\nbytes", []byte("raw\r\nbytes"), ""},
		{`\0`, nil, `invalid escape \0 at byte 0`},
		{`ab\é`, nil, `invalid escape \é at byte 2`},
		{`\"`, nil, `invalid escape \" at byte 0`},
		{`\x`, nil, `\x at byte 0 needs two hex digits`},
		{`\x1`, nil, `\x at byte 0 needs two hex digits`},
		{`\x1g`, nil, `needs two hex digits, got "1g"`},
		{`end\`, nil, "lone backslash"},
	}
	for _, tt := range tests {
		got, err := decodeEscapes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeEscapes(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("decodeEscapes(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
