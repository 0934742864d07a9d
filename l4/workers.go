package l4

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// Goroutines are kept between connections.
//
// A new goroutine starts on a small stack, and serving a connection needs a
// bigger one (Go's dialer alone is a dozen frames deep): under a high
// connection rate the profile showed 5 % of the proxy's CPU in stack growth
// and goroutine creation. So a goroutine that has served a connection, or a
// direction, waits for the next one instead of ending, with its grown stack.
// The most recently used goroutine is handed out first (its stack is the
// warmest), and one that has waited longer than workerIdle ends, so a burst
// leaves no goroutines behind. Waiting goroutines are kept in shards, about
// one per processor, each with its own lock, so starting a connection takes
// no runtime-wide lock.

// workerIdle is how long a goroutine waits for work before it ends.
const workerIdle = 2 * time.Second

// workerPool runs functions on kept goroutines.
type workerPool struct {
	shards []workerShard
	wg     sync.WaitGroup
	now    func() time.Time
}

// workerShard keeps some of the waiting goroutines.
type workerShard struct {
	pool   *workerPool
	mu     sync.Mutex
	idle   []*worker // waiting, oldest first
	closed bool
	reaper *time.Timer // ends goroutines idle for workerIdle; runs while any waits
	_      [24]byte    // keeps shards' locks off each other's cache line, mostly
}

// worker is one kept goroutine; a nil function ends it.
type worker struct {
	shard *workerShard // where it waits
	task  chan func()
	since time.Time // when it began to wait
}

func newWorkerPool() *workerPool {
	p := &workerPool{now: time.Now}
	p.shards = make([]workerShard, max(2, min(runtime.GOMAXPROCS(0), 16)))
	for i := range p.shards {
		p.shards[i].pool = p
	}
	return p
}

// run runs f on a waiting goroutine, or a new one. After close it runs f on
// a goroutine of its own that ends with it.
func (p *workerPool) run(f func()) {
	n := len(p.shards)
	first := int(rand.Uint32N(uint32(n)))
	for i := range n {
		if w := p.shards[(first+i)%n].take(); w != nil {
			w.task <- f
			return
		}
	}
	sh := &p.shards[first]
	sh.mu.Lock()
	closed := sh.closed
	if !closed {
		p.wg.Add(1)
	}
	sh.mu.Unlock()
	if closed {
		go f()
		return
	}
	go p.loop(&worker{shard: sh, task: make(chan func(), 1)}, f)
}

// take returns the goroutine that waited least, or nil.
func (sh *workerShard) take() *worker {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := len(sh.idle)
	if n == 0 {
		return nil
	}
	w := sh.idle[n-1]
	sh.idle[n-1] = nil
	sh.idle = sh.idle[:n-1]
	return w
}

// loop runs f, then what the pool hands over, until the goroutine is ended.
func (p *workerPool) loop(w *worker, f func()) {
	defer p.wg.Done()
	for f != nil {
		f()
		if !w.shard.wait(w) {
			return
		}
		f = <-w.task
	}
}

// wait puts w among the shard's waiting goroutines. It reports false when
// the pool is closed and w must end.
func (sh *workerShard) wait(w *worker) bool {
	now := sh.pool.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false
	}
	w.since = now
	sh.idle = append(sh.idle, w)
	if sh.reaper == nil {
		sh.reaper = time.AfterFunc(workerIdle, sh.reap)
	}
	return true
}

// reap ends the goroutines that waited longer than workerIdle and re-arms
// while any still wait.
func (sh *workerShard) reap() {
	now := sh.pool.now()
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return
	}
	n := 0
	for n < len(sh.idle) && now.Sub(sh.idle[n].since) >= workerIdle {
		n++
	}
	stale := make([]*worker, n)
	copy(stale, sh.idle[:n])
	m := copy(sh.idle, sh.idle[n:])
	clear(sh.idle[m:])
	sh.idle = sh.idle[:m]
	if m > 0 {
		sh.reaper.Reset(workerIdle - now.Sub(sh.idle[0].since))
	} else {
		sh.reaper = nil
	}
	sh.mu.Unlock()
	for _, w := range stale {
		w.task <- nil
	}
}

// close ends the waiting goroutines and waits for the busy ones to finish
// their work and end.
func (p *workerPool) close() {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		sh.closed = true
		idle := sh.idle
		sh.idle = nil
		if sh.reaper != nil {
			sh.reaper.Stop()
			sh.reaper = nil
		}
		sh.mu.Unlock()
		for _, w := range idle {
			w.task <- nil
		}
	}
	p.wg.Wait()
}
