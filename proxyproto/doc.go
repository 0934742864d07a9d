// Package proxyproto reads and writes the PROXY protocol header (HAProxy's
// specification, versions 1 and 2), which carries a client's address across a
// layer-4 proxy: the proxy sends it first on the connection to the backend, so
// the backend sees who connected instead of the proxy's address.
//
// balance-l4 uses it both ways. Towards backends it appends a header to a buffer
// and writes it before splicing (AppendV1, AppendV2; AppendV2Local for health
// checks). From clients behind an outer load balancer it reads one header with
// Read, which consumes exactly the header's bytes from the raw connection and
// nothing after them, so the rest of the stream can still be spliced kernel to
// kernel.
//
// Reading and writing allocate nothing but the two addresses a parsed header
// returns (one allocation for both).
//
// Typical use, accepting:
//
//	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
//	hdr, err := proxyproto.Read(conn) // conn is the *net.TCPConn itself
//	if err != nil {
//		return fmt.Errorf("reading PROXY header from %s: %w", conn.RemoteAddr(), err)
//	}
//	conn.SetReadDeadline(time.Time{})
//	client := conn.RemoteAddr().(*net.TCPAddr)
//	if hdr.Source != nil {
//		client = hdr.Source
//	}
//
// and sending, once the backend connection is up:
//
//	buf := proxyproto.AppendV2(make([]byte, 0, 64), client, listenerAddr)
//	if _, err := backend.Write(buf); err != nil { ... }
package proxyproto
