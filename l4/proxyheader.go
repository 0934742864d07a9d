package l4

import (
	"fmt"
	"net"
	"time"

	"github.com/balancel4/balance-l4/proxyproto"
)

// readProxyHeader reads the client's PROXY header within timeout, reading
// no byte past it, and returns the addresses it carries (nil for LOCAL or
// UNKNOWN, where the connection's own addresses stand).
func readProxyHeader(client *net.TCPConn, timeout time.Duration) (src, dst *net.TCPAddr, err error) {
	if timeout > 0 {
		if err := client.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, nil, fmt.Errorf("%w: setting deadline: %w", errProxyHeader, err)
		}
	}
	h, err := proxyproto.Read(client)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if err := client.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, fmt.Errorf("%w: clearing deadline: %w", errProxyHeader, err)
	}
	if h.Command != proxyproto.Proxy {
		return nil, nil, nil
	}
	return h.Source, h.Destination, nil
}

// proxyHeader returns the PROXY header (v1 or v2) the backend gets before
// the client's bytes, or nil when the service sends none.
func proxyHeader(version string, src, dst *net.TCPAddr) []byte {
	switch version {
	case "v1":
		return proxyproto.AppendV1(make([]byte, 0, 108), src, dst)
	case "v2":
		return proxyproto.AppendV2(make([]byte, 0, 232), src, dst)
	}
	return nil
}
