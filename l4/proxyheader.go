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

// writeProxyHeader sends the PROXY header (v1 or v2) to the backend, on the
// raw connection, before splicing starts.
func writeProxyHeader(conn socket, version string, src, dst *net.TCPAddr) error {
	var buf [232]byte
	var b []byte
	switch version {
	case "v1":
		b = proxyproto.AppendV1(buf[:0], src, dst)
	case "v2":
		b = proxyproto.AppendV2(buf[:0], src, dst)
	default:
		return nil
	}
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("writing PROXY %s header: %w", version, err)
	}
	return nil
}
