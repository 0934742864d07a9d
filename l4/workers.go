package l4

import (
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
// leaves no goroutines behind.

// workerIdle is how long a goroutine waits for work before it ends.
const workerIdle = 2 * time.Second

// workerPool runs functions on kept goroutines.
type workerPool struct {
	mu     sync.Mutex
	idle   []*worker // waiting, oldest first
	closed bool
	reaper *time.Timer // ends goroutines idle for workerIdle; runs while any waits
	wg     sync.WaitGroup
	now    func() time.Time
}

// worker is one kept goroutine; a nil function ends it.
type worker struct {
	task  chan func()
	since time.Time // when it began to wait
}

func newWorkerPool() *workerPool {
	return &workerPool{now: time.Now}
}

// run runs f on a waiting goroutine, or a new one. After close it runs f on
// a goroutine of its own that ends with it.
func (p *workerPool) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.task <- f
		return
	}
	closed := p.closed
	if !closed {
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if closed {
		go f()
		return
	}
	go p.loop(&worker{task: make(chan func(), 1)}, f)
}

// loop runs f, then what the pool hands over, until the goroutine is ended.
func (p *workerPool) loop(w *worker, f func()) {
	defer p.wg.Done()
	for f != nil {
		f()
		if !p.wait(w) {
			return
		}
		f = <-w.task
	}
}

// wait puts w among the waiting goroutines. It reports false when the pool
// is closed and w must end.
func (p *workerPool) wait(w *worker) bool {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	w.since = now
	p.idle = append(p.idle, w)
	if p.reaper == nil {
		p.reaper = time.AfterFunc(workerIdle, p.reap)
	}
	return true
}

// reap ends the goroutines that waited longer than workerIdle and re-arms
// while any still wait.
func (p *workerPool) reap() {
	now := p.now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].since) >= workerIdle {
		n++
	}
	stale := make([]*worker, n)
	copy(stale, p.idle[:n])
	m := copy(p.idle, p.idle[n:])
	clear(p.idle[m:])
	p.idle = p.idle[:m]
	if m > 0 {
		p.reaper.Reset(workerIdle - now.Sub(p.idle[0].since))
	} else {
		p.reaper = nil
	}
	p.mu.Unlock()
	for _, w := range stale {
		w.task <- nil
	}
}

// close ends the waiting goroutines and waits for the busy ones to finish
// their work and end.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	p.mu.Unlock()
	for _, w := range idle {
		w.task <- nil
	}
	p.wg.Wait()
}
