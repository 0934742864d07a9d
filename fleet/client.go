package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

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
