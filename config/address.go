package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// portRule says whether port 0 is acceptable in an address.
type portRule int

const (
	anyPort     portRule = iota // listen: 0 lets the OS pick (tests use it)
	nonZeroPort                 // backend: a real destination
)

// splitAddress checks a host:port address. A backend also needs a host; a
// listen address may leave it empty to mean every interface.
func splitAddress(addr string, rule portRule) (host string, port int, err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("must be host:port (IPv6 as [::1]:port), got %q", addr)
	}
	n, err := strconv.Atoi(portText)
	if err != nil || portText[0] == '+' || portText[0] == '-' {
		return "", 0, fmt.Errorf("port must be a number, got %q in %q", portText, addr)
	}
	lo := 0
	if rule == nonZeroPort {
		lo = 1
		if host == "" {
			return "", 0, fmt.Errorf("needs a host, got %q", addr)
		}
	}
	if n < lo || n > 65535 {
		return "", 0, fmt.Errorf("port must be between %d and 65535, got %d", lo, n)
	}
	return host, n, nil
}

// isLoopback reports whether a listen host accepts only local connections.
// An empty host means every interface; a name other than localhost may
// resolve anywhere.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// listenAddr is a listen address reduced to what decides a bind conflict.
type listenAddr struct {
	host string // an IP in canonical form, or a name as written
	port int
	any4 bool // 0.0.0.0: every IPv4 address
	any  bool // "" or [::]: every address (dual stack on Linux)
}

func newListenAddr(host string, port int) listenAddr {
	a := listenAddr{host: host, port: port}
	if host == "" {
		a.any = true
		return a
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		a.host = ip.String()
		switch {
		case ip == netip.IPv4Unspecified():
			a.any4 = true
		case ip.IsUnspecified():
			a.any = true
		}
	}
	return a
}

// conflicts reports whether two listeners could not both be bound. Port 0
// never conflicts: the OS picks a free port for each.
func (a listenAddr) conflicts(b listenAddr) bool {
	if a.port == 0 || a.port != b.port {
		return false
	}
	if a.any || b.any || a.host == b.host {
		return true
	}
	return a.any4 && isIPv4(b.host) || b.any4 && isIPv4(a.host)
}

func isIPv4(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is4()
}
