package discovery

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/status"
)

// Options configure a Watcher.
type Options struct {
	Service string
	Source  config.Discovery
	Log     zerolog.Logger
	// Apply makes backends what the source found; it is called only when
	// the set changed, never concurrently.
	Apply func(backends []config.Backend) error
	Now   func() time.Time // nil = time.Now
}

// Watcher keeps one discovery source's backends applied.
type Watcher struct {
	o      Options
	log    zerolog.Logger
	hold   *holdSet
	lookup *dnsLookup // nil for etcd

	applyMu sync.Mutex       // one apply at a time, in order
	applied []config.Backend // what Apply last took

	mu     sync.Mutex
	st     status.Discovery
	cancel context.CancelFunc
	done   chan struct{}
}

func newWatcher(o Options) *Watcher {
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Watcher{o: o, hold: newHoldSet(o.Source.Hold),
		log: o.Log.With().Str("component", "discovery").Str("service", o.Service).
			Str("type", o.Source.Type).Str("name", o.Source.Name).Logger()}
	w.st = status.Discovery{Type: o.Source.Type, Name: o.Source.Name}
	return w
}

// StartDNS asks DNS at once and then every interval, until Stop.
func StartDNS(o Options) *Watcher {
	w := newWatcher(o)
	w.lookup = newDNSLookup(o.Source)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.run(ctx)
	return w
}

// NewEtcd is a source whose members the fleet's watch hands to Members.
// Members leave when their keys do: no hold.
func NewEtcd(o Options) *Watcher {
	o.Source.Hold = 0
	return newWatcher(o)
}

// Stop ends the watcher's lookups; what it applied stays.
func (w *Watcher) Stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
}

// Status reports the source's state for the API, metrics and dashboard.
func (w *Watcher) Status() status.Discovery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.o.Source.Interval)
	defer t.Stop()
	for {
		w.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll asks the source once and applies the answer.
func (w *Watcher) Poll(ctx context.Context) {
	found, err := w.lookup.lookup(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.Failed(err)
		return
	}
	w.Found(found)
}

// Found applies a good answer: new backends join, missing ones leave once
// they have been missing for hold.
func (w *Watcher) Found(found []config.Backend) {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	now := w.o.Now()
	set, missing := w.hold.answer(now, found)
	for _, name := range missing {
		w.log.Warn().Str("backend", name).Dur("hold_ms", w.o.Source.Hold).
			Msg("discovered backend missing from the answer; kept until it has been missing for hold")
	}
	w.mu.Lock()
	wasFailing := w.st.LastError != "" && (w.st.LastSuccess == nil || w.st.LastErrorTime.After(*w.st.LastSuccess))
	w.st.LastSuccess = &now
	w.st.Backends = len(set)
	w.mu.Unlock()
	if wasFailing {
		w.log.Info().Int("backends", len(set)).Msg("discovery answering again")
	}
	if sameSet(set, w.applied) { // nothing applied yet is the empty set
		return
	}
	if err := w.o.Apply(set); err != nil {
		w.log.Error().Err(err).Msg("applying discovered backends")
		return
	}
	w.applied = set
}

// Failed records a lookup that gave no answer to trust: nothing changes.
func (w *Watcher) Failed(err error) {
	now := w.o.Now()
	w.mu.Lock()
	repeated := w.st.LastError == err.Error()
	w.st.Errors++
	w.st.LastError = err.Error()
	w.st.LastErrorTime = &now
	w.mu.Unlock()
	ev := w.log.Warn()
	if repeated {
		ev = w.log.Debug()
	}
	ev.Err(err).Msg("discovery lookup failed: keeping the backends found before")
}

// Describe names the source for events and logs: "dns _pg._tcp.db" or "etcd".
func Describe(d config.Discovery) string {
	return strings.TrimSpace(d.Type + " " + d.Name)
}

// Source is the discovery block this watcher serves.
func (w *Watcher) Source() config.Discovery { return w.o.Source }
