package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/internal/etcdtest"
	"github.com/balancel4/balance-l4/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is an application: it records what the fleet asks of it.
type recorder struct {
	mu      sync.Mutex
	f       *Fleet
	applied map[Key]Operator
	calls   int
}

func (r *recorder) changed(keys []Key, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, k := range keys {
		op, _ := r.f.Want(k)
		r.applied[k] = op
	}
}

func (r *recorder) get(k Key) Operator {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[k]
}

func startFleet(t *testing.T, c *etcdtest.Cluster, id string) (*Fleet, *recorder) {
	t.Helper()
	r := &recorder{applied: map[Key]Operator{}}
	cfg := config.Fleet{Etcd: c.Endpoints(), Name: "unit", DialTimeout: time.Second,
		RequestTimeout: time.Second, PublishInterval: 200 * time.Millisecond}
	f, err := New(Options{Config: cfg, ID: id, Version: "test", Log: zerolog.Nop(), Probe: 100 * time.Millisecond,
		Hooks: Hooks{Changed: r.changed, Report: func() Report {
			return Report{ConfigDigest: "d", Backends: []status.InstanceBackend{{Service: "web", Backend: "a", State: "healthy"}}}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	r.f = f
	f.Start()
	t.Cleanup(f.Close)
	select {
	case <-f.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("no first sync")
	}
	return f, r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFleetOnRealEtcd(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 1})
	f1, r1 := startFleet(t, c, "one")
	f2, r2 := startFleet(t, c, "two")
	k := Key{"web", "a"}

	// An update is applied by the writer before Update returns.
	if err := f1.Update(context.Background(), k, "test", func(o *Operator) { o.Drain = true }); err != nil {
		t.Fatal(err)
	}
	if op := r1.get(k); !op.Drain || op.By != "test" {
		t.Fatalf("writer applied %+v before answering, want drain by test", op)
	}
	eventually(t, "the other instance draining", func() bool { return r2.get(k).Drain })

	// A weight keeps the drain: updates read, change and compare-and-swap.
	if err := f2.Update(context.Background(), k, "test", func(o *Operator) { o.Weight = new(5) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drain and weight 5 on one", func() bool {
		op := r1.get(k)
		return op.Drain && op.Weight != nil && *op.Weight == 5
	})

	// The registry: both see both.
	eventually(t, "two instances in each view", func() bool {
		return len(f1.View().Instances) == 2 && len(f2.View().Instances) == 2
	})
	v := f1.View()
	if !v.Connected || v.OperatorRevision == 0 || v.Revision < v.OperatorRevision {
		t.Fatalf("view = %+v", v)
	}

	// The registry is refreshed on its ticks (200 ms here), not in a loop.
	before := f1.refreshes.Load()
	time.Sleep(time.Second)
	if n := f1.refreshes.Load() - before; n > 10 {
		t.Fatalf("%d lease refreshes in 1 s with a 200 ms interval", n)
	}

	// An invalid value is counted and changes nothing.
	cli := c.Client(t)
	if _, err := cli.Put(context.Background(), OperatorKey("unit", k), `{"drain": 1}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the invalid value counted", func() bool { return f2.InvalidKeys() == 1 })
	if op, _ := f2.Want(k); !op.Drain {
		t.Fatal("an invalid value changed the wish")
	}

	// A clean Close removes the registry entry at once.
	f2.Close()
	eventually(t, "two gone from one's registry", func() bool { return len(f1.View().Instances) == 1 })
}

// TestWatchNoticesCompaction: a watch asked to start at a compacted revision
// ends with an error, and the run loop's full read follows.
func TestWatchNoticesCompaction(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 1})
	f, r := startFleet(t, c, "one")
	cli := c.Client(t)
	ctx := context.Background()
	first, err := cli.Put(ctx, OperatorKey("unit", Key{"web", "a"}), `{"drain": true}`)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := cli.Put(ctx, "/elsewhere", "x"); err != nil {
			t.Fatal(err)
		}
	}
	c.Compact(t)
	err = f.watch(f.client(), first.Header.Revision-1)
	if err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("watch from a compacted revision: %v, want a compaction error", err)
	}
	eventually(t, "the drain applied", func() bool { return r.get(Key{"web", "a"}).Drain })
}

// TestUpdateRefusedWhileUnreachable: with quorum gone, a write answers at
// once with ErrUnreachable (HTTP 503) and changes nothing; a local change
// still applies.
func TestUpdateRefusedWhileUnreachable(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	f, r := startFleet(t, c, "one")
	for i := range 2 {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "etcd seen unreachable", func() bool { return !f.Connected() })
	k := Key{"web", "a"}
	start := time.Now()
	err := f.Update(context.Background(), k, "test", func(o *Operator) { o.Drain = true })
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, status.ErrUnavailable) {
		t.Fatalf("update without quorum: %v", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Logf("refusal took %v (it should not wait for etcd)", time.Since(start))
	}
	if r.get(k).Drain {
		t.Fatal("a refused update was applied")
	}
	f.SetLocal(k, "test", func(o *Operator) { o.Drain = true })
	if op, local := f.Want(k); !op.Drain || !local || !r.get(k).Drain {
		t.Fatalf("local drain: want %+v local=%v", op, local)
	}
	if v := f.View(); v.Connected || v.DisconnectedSince == nil || v.LastError == "" {
		t.Fatalf("view while unreachable = %+v", v)
	}
	for i := range 2 {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "reconnected", f.Connected)
	// Still local: no fleet change to the key happened.
	if _, local := f.Want(k); !local {
		t.Fatal("the local change was dropped by a resync without a fleet change")
	}
	cli := c.Client(t)
	if _, err := cli.Put(context.Background(), OperatorKey("unit", k), `{"drain": false, "weight": 2}`, clientv3.WithPrevKV()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fleet change replacing the local one", func() bool {
		op, local := f.Want(k)
		return !local && !op.Drain && op.Weight != nil && *op.Weight == 2
	})
}
