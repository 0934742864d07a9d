package etcdtest

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

// A closed clientv3 client leaves no goroutines behind: no ignores needed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func put(t *testing.T, cli *clientv3.Client, key, val string, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := cli.Put(ctx, key, val)
	return err
}

func get(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cli.Get(ctx, key, opts...)
}

// TestPutGetCompact starts a cluster, writes, reads, compacts, and checks
// that Cleanup ends the processes.
func TestPutGetCompact(t *testing.T) {
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		c := Start(t, Options{Members: 3})
		eps := c.Endpoints()
		if len(eps) != 3 || c.Members() != 3 {
			t.Fatalf("endpoints %v", eps)
		}
		for i, ep := range eps {
			if !strings.HasPrefix(ep, "http://127.0.0.1:") || c.Member(i).Endpoint() != ep {
				t.Errorf("endpoint %d: %q, member's %q", i, ep, c.Member(i).Endpoint())
			}
			pids = append(pids, c.Member(i).PID())
		}
		cli := c.Client(t)
		if err := put(t, cli, "/k", "v1", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		resp, err := get(t, cli, "/k")
		if err != nil {
			t.Fatal(err)
		}
		first := resp.Header.Revision
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
			t.Fatalf("got %v", resp.Kvs)
		}
		if err := put(t, cli, "/k", "v2", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if rev := c.Compact(t); rev <= first {
			t.Fatalf("compacted to %d, not past %d", rev, first)
		}
		c.Compact(t) // again at the same revision: fine
		if _, err := get(t, cli, "/k", clientv3.WithRev(first)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("read at compacted revision %d: %v, want ErrCompacted", first, err)
		}
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("etcd pid %d still exists after the test: %v", pid, err)
		}
	}
}

// TestLeaderKilled kills the leader: another is elected quickly and writes
// go on; the old one comes back as a follower.
func TestLeaderKilled(t *testing.T) {
	c := Start(t, Options{})
	cli := c.Client(t)
	old := c.Leader(t)
	if err := c.Kill(old); err != nil {
		t.Fatal(err)
	}
	if c.Member(old).Running() || c.Member(old).PID() != 0 {
		t.Fatal("killed member still running")
	}
	start := time.Now()
	leader := c.Leader(t)
	t.Logf("new leader %d after %s", leader, time.Since(start))
	if leader == old {
		t.Fatalf("leader is still the killed member %d", old)
	}
	if err := put(t, cli, "/after-kill", "v", 5*time.Second); err != nil {
		t.Fatalf("write after the leader was killed: %v", err)
	}
	if err := c.Restart(old); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t)
}

// TestQuorumLost stops two of three members: writes fail; restarted, the
// cluster serves again.
func TestQuorumLost(t *testing.T) {
	c := Start(t, Options{})
	cli := c.Client(t)
	for _, i := range []int{1, 2} {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(t, cli, "/no-quorum", "v", time.Second); err == nil {
		t.Fatal("write without a quorum succeeded")
	} else {
		t.Logf("write without a quorum: %v", err)
	}
	for _, i := range []int{1, 2} {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitHealthy(t)
	if err := put(t, cli, "/quorum-back", "v", 10*time.Second); err != nil {
		t.Fatalf("write after the restarts: %v", err)
	}
}

// TestTLS: the cluster's client certificate works, one from another CA and
// none at all do not.
func TestTLS(t *testing.T) {
	c := Start(t, Options{TLS: true})
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Fatalf("endpoint %q, want https", ep)
		}
	}
	cli := c.Client(t)
	if err := put(t, cli, "/tls", "v", 5*time.Second); err != nil {
		t.Fatalf("with the good certificate: %v", err)
	}

	certFile, keyFile := c.UntrustedClientCert(t)
	for name, files := range map[string][2]string{"untrusted": {certFile, keyFile}, "none": {"", ""}} {
		t.Run(name, func(t *testing.T) {
			cfg := c.ClientConfig(t)
			tlsCfg, err := clientTLS(c.CAFile, files[0], files[1])
			if err != nil {
				t.Fatal(err)
			}
			cfg.TLS = tlsCfg
			bad, err := clientv3.New(cfg)
			if err != nil {
				return // refused early: fine
			}
			defer bad.Close()
			if err := put(t, bad, "/tls", "bad", time.Second); err == nil {
				t.Fatal("write with a bad client certificate succeeded")
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
}

// TestAuth: root works, a wrong password does not, and the balance user may
// use its prefix only.
func TestAuth(t *testing.T) {
	c := Start(t, Options{Auth: true})
	if c.Username != RootUser || c.Password != RootPassword {
		t.Fatalf("credentials %q/%q", c.Username, c.Password)
	}
	root := c.Client(t)
	if err := put(t, root, "/anywhere", "v", 5*time.Second); err != nil {
		t.Fatalf("root: %v", err)
	}
	c.Leader(t) // Status needs a token with auth on
	c.Compact(t)

	cfg := c.ClientConfig(t)
	cfg.Password = "wrong"
	if bad, err := clientv3.New(cfg); err == nil {
		bad.Close()
		t.Fatal("a wrong password was accepted")
	} else if !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: %v, want ErrAuthFailed", err)
	}

	cfg = c.ClientConfig(t)
	cfg.Username, cfg.Password = BalanceUser, BalancePassword
	balance, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer balance.Close()
	if err := put(t, balance, BalancePrefix+"k", "v", 5*time.Second); err != nil {
		t.Fatalf("balance in its prefix: %v", err)
	}
	if err := put(t, balance, "/elsewhere", "v", 5*time.Second); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("balance outside its prefix: %v, want ErrPermissionDenied", err)
	}
}

// TestTLSAndAuth: both at once, as the fleet runs: the balance user with the
// cluster's certificate works, with an untrusted one it does not.
func TestTLSAndAuth(t *testing.T) {
	c := Start(t, Options{TLS: true, Auth: true})
	if err := put(t, c.Client(t), "/root-key", "v", 5*time.Second); err != nil {
		t.Fatalf("root: %v", err)
	}
	cfg := c.ClientConfig(t)
	cfg.Username, cfg.Password = BalanceUser, BalancePassword
	balance, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer balance.Close()
	if err := put(t, balance, BalancePrefix+"k", "v", 5*time.Second); err != nil {
		t.Fatalf("balance: %v", err)
	}

	// A restarted member has forgotten the clients' tokens: they log in again.
	leader := c.Leader(t)
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t)
	c.Leader(t)
	c.Compact(t)
	if err := put(t, balance, BalancePrefix+"k", "v2", 5*time.Second); err != nil {
		t.Fatalf("balance after a restart: %v", err)
	}

	certFile, keyFile := c.UntrustedClientCert(t)
	if cfg.TLS, err = clientTLS(c.CAFile, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	cfg.DialTimeout = time.Second
	if bad, err := clientv3.New(cfg); err == nil { // it authenticates: fails here
		bad.Close()
		t.Fatal("a client with an untrusted certificate authenticated")
	}
}
