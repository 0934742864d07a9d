package l4

import (
	"sync"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/internal/testclock"
)

// runAndWait runs n functions on p at once and waits until their goroutines
// wait for work again, when idle goroutines wait in all.
func runAndWait(t *testing.T, p *workerPool, n, idle int) {
	t.Helper()
	var started, finish sync.WaitGroup
	started.Add(n)
	finish.Add(1)
	for range n {
		p.run(func() {
			started.Done()
			finish.Wait()
		})
	}
	started.Wait()
	finish.Done()
	waitFor(t, "the goroutines to wait for work", func() bool { return idleWorkers(p) == idle })
}

func idleWorkers(p *workerPool) int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += len(sh.idle)
		sh.mu.Unlock()
	}
	return n
}

func reapAll(p *workerPool) {
	for i := range p.shards {
		p.shards[i].reap()
	}
}

func TestWorkerPoolKeepsGoroutines(t *testing.T) {
	p := newWorkerPool()
	defer p.close()
	runAndWait(t, p, 3, 3)
	// Three at once again: the same three goroutines, no new one.
	runAndWait(t, p, 3, 3)
	// Five at once: two more.
	runAndWait(t, p, 5, 5)
}

func TestWorkerPoolEndsIdleGoroutines(t *testing.T) {
	clock := testclock.New(time.Unix(1000, 0))
	p := newWorkerPool()
	p.now = clock.Now
	defer p.close()
	runAndWait(t, p, 2, 2) // both wait since 1000 s
	clock.Advance(workerIdle / 2)
	runAndWait(t, p, 1, 2) // the newest takes it and waits again, since 1001 s
	clock.Advance(workerIdle / 2)
	reapAll(p) // the one that waited since 1000 s is stale, the other is not
	if got := idleWorkers(p); got != 1 {
		t.Fatalf("after the first reap %d goroutines wait, want 1", got)
	}
	clock.Advance(workerIdle / 2)
	reapAll(p)
	if got := idleWorkers(p); got != 0 {
		t.Fatalf("after the second reap %d goroutines wait, want 0", got)
	}
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		armed := sh.reaper != nil
		sh.mu.Unlock()
		if armed {
			t.Fatalf("shard %d's reaper is still armed with no goroutine waiting", i)
		}
	}
}

func TestWorkerPoolCloseWaitsForBusyGoroutines(t *testing.T) {
	p := newWorkerPool()
	runAndWait(t, p, 2, 2)
	release := make(chan struct{})
	finished := make(chan struct{})
	p.run(func() {
		<-release
		close(finished)
	})
	closed := make(chan struct{})
	go func() {
		p.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("close returned while a goroutine was busy")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-finished
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("close did not return after the busy goroutine finished")
	}
	// After close, run still runs f.
	ran := make(chan struct{})
	p.run(func() { close(ran) })
	<-ran
}
