package admin

import (
	"sync"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// historyLen is how many samples a sparkline shows: 5 minutes at the default
// 5 s period. Memory is fixed per backend (2 × 60 float32).
const historyLen = 60

// history keeps, per service and per backend, the last historyLen samples of
// active connections and throughput. A sampler fills it from
// Controller.Services; backends and services that disappear are dropped at
// the next sample, so memory follows what runs.
type history struct {
	every time.Duration

	mu       sync.Mutex
	gen      uint64
	backends map[backendKey]*series
	services map[string]*series
}

type backendKey struct{ service, backend string }

// series is a ring of samples. rate is bytes per second, both directions,
// since the previous sample.
type series struct {
	active    [historyLen]float32
	rate      [historyLen]float32
	head, n   int // next slot to write; samples held
	lastBytes int64
	lastAt    time.Time
	gen       uint64
}

func newHistory(every time.Duration) *history {
	return &history{
		every:    every,
		backends: make(map[backendKey]*series),
		services: make(map[string]*series),
	}
}

// run samples at once and then every h.every until stop is closed.
func (h *history) run(stop <-chan struct{}, now func() time.Time, services func() []status.Service) {
	h.record(now(), services())
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.record(now(), services())
		}
	}
}

// record adds one sample for every service and backend in svcs.
func (h *history) record(at time.Time, svcs []status.Service) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	for _, s := range svcs {
		var bytes int64
		for _, b := range s.Backends {
			k := backendKey{s.Name, b.Name}
			sr := h.backends[k]
			if sr == nil {
				sr = &series{}
				h.backends[k] = sr
			}
			sr.add(h.gen, at, b.ActiveConnections, b.BytesIn+b.BytesOut)
			bytes += b.BytesIn + b.BytesOut
		}
		sr := h.services[s.Name]
		if sr == nil {
			sr = &series{}
			h.services[s.Name] = sr
		}
		sr.add(h.gen, at, s.ActiveConnections, bytes)
	}
	for k, sr := range h.backends {
		if sr.gen != h.gen {
			delete(h.backends, k)
		}
	}
	for k, sr := range h.services {
		if sr.gen != h.gen {
			delete(h.services, k)
		}
	}
}

// add appends a sample. The rate is 0 for the first sample and when the byte
// counter went down (a backend replaced under the same name): it restarts
// from there.
func (sr *series) add(gen uint64, at time.Time, active, bytes int64) {
	var rate float32
	if !sr.lastAt.IsZero() && at.After(sr.lastAt) && bytes >= sr.lastBytes {
		rate = float32(float64(bytes-sr.lastBytes) / at.Sub(sr.lastAt).Seconds())
	}
	sr.active[sr.head] = float32(active)
	sr.rate[sr.head] = rate
	sr.head = (sr.head + 1) % historyLen
	sr.n = min(sr.n+1, historyLen)
	sr.lastBytes = bytes
	sr.lastAt = at
	sr.gen = gen
}

// points holds a series' samples, oldest first; callers reuse one value.
type points struct {
	active, rate []float32
}

// backend returns the samples of one backend (empty when it has none yet).
func (h *history) backend(service, name string, dst *points) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.backends[backendKey{service, name}].copyTo(dst)
}

// service returns the samples of one service.
func (h *history) service(name string, dst *points) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.services[name].copyTo(dst)
}

// copyTo copies the samples into dst, oldest first; a nil series has none.
func (sr *series) copyTo(dst *points) {
	dst.active, dst.rate = dst.active[:0], dst.rate[:0]
	if sr == nil {
		return
	}
	start := (sr.head - sr.n + historyLen) % historyLen
	for i := range sr.n {
		j := (start + i) % historyLen
		dst.active = append(dst.active, sr.active[j])
		dst.rate = append(dst.rate, sr.rate[j])
	}
}
