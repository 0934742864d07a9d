package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/balancel4/balance-l4/config"
)

// clientConfig turns [fleet] into an etcd client configuration. Bad TLS files
// are an error here, at start, naming the file.
func clientConfig(c config.Fleet) (clientv3.Config, error) {
	cc := clientv3.Config{
		Endpoints:   c.Etcd,
		DialTimeout: c.DialTimeout,
		Username:    c.Username,
		Password:    c.Password,
		// The client's own zap logs would duplicate ours; we log every
		// failure that matters with the endpoints it concerns.
		Logger: zap.NewNop(),
		// Keep-alives make a dead TCP path fail in seconds, not minutes.
		DialKeepAliveTime:    c.RequestTimeout,
		DialKeepAliveTimeout: c.RequestTimeout,
		PermitWithoutStream:  true,
	}
	if !c.TLS() {
		return cc, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return cc, fmt.Errorf("fleet.tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cc, fmt.Errorf("fleet.tls_ca: %s holds no PEM certificate", c.TLSCA)
		}
		tc.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return cc, fmt.Errorf("fleet.tls_cert/tls_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	cc.TLS = tc
	return cc, nil
}

// describe says what went wrong talking to etcd in words an operator can act
// on, naming the endpoints.
func describe(endpoints []string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "no answer in time (no quorum, a partition, or every endpoint down)"
	case strings.Contains(msg, "authentication failed"):
		msg = "authentication failed: check fleet.username and " + config.EtcdPasswordEnv + " (" + msg + ")"
	case strings.Contains(msg, "certificate"), strings.Contains(msg, "tls:"):
		msg = "TLS handshake failed: check fleet.tls_ca, tls_cert and tls_key (" + msg + ")"
	}
	return fmt.Errorf("etcd %s: %s", strings.Join(endpoints, ","), msg)
}

// diagnose looks at each endpoint by itself when etcd gave no answer, since
// the client then says only that time ran out: a refused connection, a TLS
// handshake the server rejected (an untrusted client certificate shows only
// as an alert after the handshake), or a member that accepts and stays
// silent. It takes at most timeout.
func diagnose(endpoints []string, tc *tls.Config, timeout time.Duration) string {
	out := make([]string, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = ep + ": " + diagnoseOne(ep, tc, timeout)
		}()
	}
	wg.Wait()
	return strings.Join(out, "; ")
}

func diagnoseOne(endpoint string, tc *tls.Config, timeout time.Duration) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err.Error()
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		var se syscall.Errno
		if errors.As(err, &se) {
			return se.Error()
		}
		return err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if u.Scheme != "https" {
		return "connects, but etcd gave no answer (no quorum or a stalled member)"
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if tc != nil {
		cfg = tc.Clone()
		cfg.NextProtos = []string{"h2"}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	tconn := tls.Client(conn, cfg)
	if err := tconn.Handshake(); err != nil {
		return "TLS handshake failed: " + err.Error()
	}
	// With TLS 1.3 the server judges the client's certificate after the
	// handshake; its verdict is the first thing read.
	tconn.SetReadDeadline(time.Now().Add(timeout / 2))
	if _, err := tconn.Read(make([]byte, 1)); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "TLS rejected by the server (check fleet.tls_cert and tls_key): " + err.Error()
		}
	}
	return "TLS connects, but etcd gave no answer (no quorum or a stalled member)"
}
