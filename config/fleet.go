package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// EtcdPasswordEnv names the environment variable that holds the etcd password;
// the file never does, so it can be shared and checked in.
const EtcdPasswordEnv = "BALANCE_ETCD_PASSWORD"

// readFleet reads the [fleet] table. The TLS files are checked for
// readability here, so -check finds a wrong path before a start does.
func readFleet(t *table, f *Fleet, getenv func(string) string) {
	t.strList("etcd", &f.Etcd)
	if len(f.Etcd) == 0 {
		f.Etcd = nil // etcd = [] is the same as no fleet
	}
	for i, e := range f.Etcd {
		norm, err := etcdEndpoint(e)
		if err != nil {
			t.c.add(t.path.key("etcd").index(i), "%v", err)
			continue
		}
		f.Etcd[i] = norm
	}
	if t.str("name", &f.Name) && !isServiceName(f.Name) {
		t.c.add(t.path.key("name"), "must match [a-z0-9_-]+, got %q", f.Name)
	}
	if t.str("instance", &f.Instance) && f.Instance != "" && !isInstanceID(f.Instance) {
		t.c.add(t.path.key("instance"), "must be letters, digits, '.', '_' or '-' (it is part of an etcd key), got %q", f.Instance)
	}
	if t.str("advertise", &f.Advertise) && f.Advertise != "" {
		if u, err := url.Parse(f.Advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.c.add(t.path.key("advertise"), "must be an http:// or https:// URL such as \"http://10.0.0.5:9090\", got %q", f.Advertise)
		}
	}
	t.duration("dial_timeout", &f.DialTimeout, positive)
	t.duration("request_timeout", &f.RequestTimeout, positive)
	t.duration("publish_interval", &f.PublishInterval, positive)
	t.str("username", &f.Username)
	for _, k := range []struct {
		key string
		dst *string
	}{{"tls_ca", &f.TLSCA}, {"tls_cert", &f.TLSCert}, {"tls_key", &f.TLSKey}} {
		if t.str(k.key, k.dst) && *k.dst != "" {
			if _, err := os.Stat(*k.dst); err != nil {
				t.c.add(t.path.key(k.key), "cannot read %s: %v", *k.dst, err)
			}
		}
	}
	t.finish()
	if (f.TLSCert == "") != (f.TLSKey == "") {
		missing := "tls_key"
		if f.TLSCert == "" {
			missing = "tls_cert"
		}
		t.c.add(t.path.key(missing), "tls_cert and tls_key go together: set both or neither")
	}
	if getenv != nil && f.Username != "" {
		f.Password = getenv(EtcdPasswordEnv)
	}
	if f.Enabled() {
		if f.TLS() {
			for i, e := range f.Etcd {
				if strings.HasPrefix(e, "http://") {
					t.c.add(t.path.key("etcd").index(i), "is http:// but tls_* is set: use https:// endpoints for etcd over TLS")
				}
			}
		}
	}
}

// etcdEndpoint checks one etcd client URL and returns it without a trailing
// slash; a bare host:port is taken as http://host:port, as etcdctl does.
func etcdEndpoint(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("must not be empty")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("must be scheme://host:port with nothing after it, got %q", s)
	}
	if _, _, err := splitAddress(u.Host, nonZeroPort); err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host, nil
}

func isInstanceID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return s != "" && len(s) <= 128
}
