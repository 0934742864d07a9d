package l4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/sni"
)

// front is one listening address and the services behind it: one service
// that takes every client, or services picked by the TLS server name the
// client asks for (SNI routing). A front belongs to its address, not to a
// service: a reload that keeps the address keeps the listener, whatever
// services come and go behind it.
type front struct {
	r      *Runtime
	acc    *acceptor
	routes atomic.Pointer[routeTable] // swapped whole by Apply
}

// routeTable is who takes a front's clients. Immutable once stored.
type routeTable struct {
	only  *service // a plain address's one service: nothing is read before it
	first *service // the first service in file order: counts what no service takes
	dflt  *service // the service without sni (the default route), or nil
	names sni.Routes[*service]
	// wait bounds reading the PROXY header and the ClientHello: the
	// shortest timeouts.connect of the address's services.
	wait        time.Duration
	acceptProxy bool // the same on every service of the address (config checks)
}

// errNoRoute: SNI routing found no service for the client.
var errNoRoute = errors.New("l4: no service for the client's server name")

// listenKey names the front a service listens through: its listen address,
// shared by the services that route by SNI there. With port 0 every service
// gets a port, and a front, of its own.
func listenKey(sc *config.Service) string {
	if fixedPort(sc.Listen) {
		return sc.Listen
	}
	return sc.Listen + "\x00" + sc.Name
}

// newRouteTable builds the routes of the services on one address, in file
// order. Config validation ensures at most one default route and no name
// routed twice; here the first one wins.
func newRouteTable(group []*service) *routeTable {
	rt := &routeTable{first: group[0]}
	for _, s := range group {
		cfg := s.cfg.Load()
		if rt.wait == 0 || cfg.Timeouts.Connect < rt.wait {
			rt.wait = cfg.Timeouts.Connect
		}
		rt.acceptProxy = rt.acceptProxy || cfg.AcceptProxy
		if len(cfg.SNI) == 0 {
			if rt.dflt == nil {
				rt.dflt = s
			}
			continue
		}
		for _, name := range cfg.SNI {
			_ = rt.names.Add(name, s)
		}
	}
	if len(group) == 1 && rt.dflt != nil {
		rt.only = rt.dflt
	}
	return rt
}

// dispatch hands an accepted client to its service: at once on a plain
// address, else after reading what routes it, in a goroutine of its own.
func (f *front) dispatch(fd int, src *net.TCPAddr) {
	rt := f.routes.Load()
	if s := rt.only; s != nil && !rt.acceptProxy {
		// The service's own configuration decides, the one admit serves
		// with: a reload stores it before the routes, and a client must
		// not go inline with a PROXY header it then forwards as data.
		if cfg := s.cfg.Load(); !cfg.AcceptProxy {
			s.admit(fd, src, cfg)
			return
		}
	}
	// A client read before it is served waits in Go's netpoller meanwhile.
	conn, err := fdConn(fd)
	if err != nil {
		s := rt.first
		s.acceptErrors.Add(1)
		if ok, n := s.acceptLog.allow(time.Now()); ok {
			s.r.log.Error().Err(err).Str("service", s.name).Int64("suppressed", n).Msg("accepting a connection failed")
		}
		return
	}
	f.r.connWG.Add(1)
	if rt.only != nil {
		f.r.workers.run(func() { rt.only.admitRouted(conn, admission{start: time.Now()}) })
		return
	}
	f.r.workers.run(func() { f.route(conn, rt) })
}

// fdConn makes a *net.TCPConn of an accepted socket (net.FileConn takes a
// duplicate; the original is closed).
func fdConn(fd int) (*net.TCPConn, error) {
	file := os.NewFile(uintptr(fd), "client")
	conn, err := net.FileConn(file)
	_ = file.Close()
	if err != nil {
		return nil, fmt.Errorf("accepting a connection: %w", err)
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("accepting a connection: not TCP")
	}
	return tc, nil
}

// route reads the client's PROXY header (with accept_proxy) and TLS
// ClientHello, within rt.wait in all, picks the service and hands the
// client to it with the bytes read, which go to the backend first. A client
// that sends no server name, or no TLS, goes to the default route; one
// without a route, or whose ClientHello is larger than sni.MaxHello or not
// complete in time, is closed and counted (no_route) under rt.first.
func (f *front) route(conn *net.TCPConn, rt *routeTable) {
	start := time.Now()
	// A shutdown that stops waiting ends a read in progress.
	stop := context.AfterFunc(f.r.ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	var adm admission
	src, _ := conn.RemoteAddr().(*net.TCPAddr)
	if rt.acceptProxy {
		adm.proxied = true
		psrc, pdst, err := readProxyHeader(conn, rt.wait)
		if err != nil {
			stop()
			rt.first.rejectUnserved(conn, src, "proxy_header", &rt.first.rejected.proxyHeader, start, err)
			return
		}
		if psrc != nil && pdst != nil {
			adm.src, adm.dst, src = psrc, pdst, psrc
		}
	}
	hello, name, err := readClientHello(conn, rt.wait)
	stop()
	var s *service
	switch {
	case err == nil && name != "":
		var ok bool
		if s, ok = rt.names.Match(name); !ok {
			s = rt.dflt
		}
		if s == nil {
			err = fmt.Errorf("%w: %q", errNoRoute, name)
		}
	case err == nil, errors.Is(err, sni.ErrNotTLS), errors.Is(err, sni.ErrMalformed):
		s = rt.dflt // no name: the default route
		switch {
		case s != nil:
			err = nil
		case err == nil:
			err = fmt.Errorf("%w: the client sent no server name", errNoRoute)
		default:
			err = fmt.Errorf("%w: no server name: %w", errNoRoute, err)
		}
	}
	if s == nil {
		rt.first.rejectUnserved(conn, src, "no_route", &rt.first.rejected.noRoute, start, err)
		return
	}
	adm.first, adm.start = hello, start
	s.admitRouted(conn, adm)
}

// readClientHello reads from the client until what it read is a complete
// ClientHello, or shows it is not one, within wait. It returns every byte it
// read and the server name, or the sni package's verdict: ErrNotTLS (also
// for a client that closes its side first) and ErrMalformed route as "no
// name"; ErrTooLarge, a timeout or a failed read do not route. It reads no
// more than sni.MaxHello bytes.
func readClientHello(conn *net.TCPConn, wait time.Duration) ([]byte, string, error) {
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, "", fmt.Errorf("reading the ClientHello: %w", err)
	}
	buf := make([]byte, 0, 4<<10) // most ClientHellos fit, post-quantum key shares included
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= sni.MaxHello {
				return buf, "", sni.ErrTooLarge
			}
			buf = append(make([]byte, 0, min(2*cap(buf), sni.MaxHello)), buf...)
		}
		n, rerr := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		name, err := sni.ServerName(buf)
		if err != sni.ErrIncomplete {
			if cerr := conn.SetReadDeadline(time.Time{}); cerr != nil && err == nil {
				err = fmt.Errorf("reading the ClientHello: %w", cerr)
			}
			return buf, name, err
		}
		if rerr == io.EOF {
			// The client finished sending without a complete ClientHello
			// (nothing at all: a connect-and-close check): it speaks no TLS.
			_ = conn.SetReadDeadline(time.Time{})
			return buf, "", fmt.Errorf("%w: the client closed its side after %d bytes", sni.ErrNotTLS, len(buf))
		}
		if rerr != nil {
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				rerr = fmt.Errorf("no complete ClientHello within %s", wait)
			}
			return buf, "", fmt.Errorf("reading the ClientHello (%d bytes so far): %w", len(buf), rerr)
		}
	}
}
