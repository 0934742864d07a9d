package config

import (
	"strings"
	"testing"
)

func TestSplitAddress(t *testing.T) {
	tests := []struct {
		addr    string
		rule    portRule
		host    string
		port    int
		wantErr string
	}{
		{"127.0.0.1:80", nonZeroPort, "127.0.0.1", 80, ""},
		{"[::1]:65535", nonZeroPort, "::1", 65535, ""},
		{"db.internal:5432", nonZeroPort, "db.internal", 5432, ""},
		{":8080", anyPort, "", 8080, ""},
		{"127.0.0.1:0", anyPort, "127.0.0.1", 0, ""},
		{"127.0.0.1:0", nonZeroPort, "", 0, "between 1 and 65535"},
		{":80", nonZeroPort, "", 0, "needs a host"},
		{"127.0.0.1", anyPort, "", 0, "must be host:port"},
		{"127.0.0.1:", anyPort, "", 0, "port must be a number"},
		{"127.0.0.1:+80", anyPort, "", 0, "port must be a number"},
		{"127.0.0.1:http", anyPort, "", 0, "port must be a number"},
		{"127.0.0.1:65536", anyPort, "", 0, "between 0 and 65535"},
		{"::1:80", anyPort, "", 0, "must be host:port"},
	}
	for _, tt := range tests {
		host, port, err := splitAddress(tt.addr, tt.rule)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("splitAddress(%q) error = %v, want %q", tt.addr, err, tt.wantErr)
			}
			continue
		}
		if err != nil || host != tt.host || port != tt.port {
			t.Errorf("splitAddress(%q) = %q, %d, %v; want %q, %d", tt.addr, host, port, err, tt.host, tt.port)
		}
	}
}

func TestListenConflicts(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{":80", "127.0.0.1:80", true},
		{"[::]:80", "127.0.0.1:80", true},
		{"0.0.0.0:80", "10.0.0.1:80", true},
		{"0.0.0.0:80", "[::1]:80", false},
		{"0.0.0.0:80", "0.0.0.0:80", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80", true},
		{"[::1]:80", "[0:0:0:0:0:0:0:1]:80", true},
		{"localhost:80", "localhost:80", true},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{":0", ":0", false},
	}
	for _, tt := range tests {
		a := mustListen(t, tt.a)
		b := mustListen(t, tt.b)
		if got := a.conflicts(b); got != tt.want {
			t.Errorf("%s conflicts with %s = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := b.conflicts(a); got != tt.want {
			t.Errorf("%s conflicts with %s = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
		}
	}
}

func mustListen(t *testing.T, addr string) listenAddr {
	t.Helper()
	host, port, err := splitAddress(addr, anyPort)
	if err != nil {
		t.Fatal(err)
	}
	return newListenAddr(host, port)
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
