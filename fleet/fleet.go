package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/balancel4/balance-l4/config"
	"github.com/balancel4/balance-l4/status"
)

// Hooks connect the fleet to the application.
type Hooks struct {
	// Changed applies what keys now ask for (Fleet.Want); all means every
	// key, after a full resynchronisation. It is never called concurrently
	// with itself, and never with a lock of this package held.
	Changed func(keys []Key, all bool)
	// Report gives this instance's figures for the registry.
	Report func() Report
	// Members is told which services' registered members changed
	// (Fleet.Members); nil services means every service, after a full read.
	Members func(services []string)
}

// Options configure New.
type Options struct {
	Config  config.Fleet
	ID      string // this instance's id, resolved
	Admin   string // the admin URL others should use, or ""
	Version string
	Log     zerolog.Logger
	Hooks   Hooks
	Saved   *Saved // the state file's fleet state, if any

	// Probe is how often etcd is asked a linearizable question to find a
	// dead or stale connection; 0 means 1s.
	Probe time.Duration
	Now   func() time.Time // nil = time.Now
}

// Fleet is this instance's membership in a fleet.
type Fleet struct {
	cfg     config.Fleet
	lay     layout
	id      string
	admin   string
	version string
	started time.Time
	log     zerolog.Logger
	hooks   Hooks
	probe   time.Duration
	now     func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	synced chan struct{} // closed after the first full read
	once   sync.Once

	cliMu sync.Mutex
	cli   *clientv3.Client

	applyMu sync.Mutex // serialises mirror changes with the Changed hook

	mu          sync.Mutex
	m           *mirror
	instances   map[string]registration
	members     map[string]map[string]Member // service -> backend -> member
	applied     int64                        // revision applied: the newest header seen by a read or the watch
	connected   bool
	since       time.Time // when etcd became unreachable
	lastErr     string
	lastSync    time.Time
	stopWatch   context.CancelFunc
	invalidSeen map[string]int64 // key -> mod revision already counted as invalid

	invalid    atomic.Int64
	refreshes  atomic.Int64 // lease refreshes and grants, for the tests
	publishCh  chan struct{}
	registered chan struct{} // closed after the first registry entry is written
	regOnce    sync.Once
	keepEntry  atomic.Bool // Detach: leave without revoking the lease
}

// New prepares a fleet member; Start connects it. An error is a problem in
// the configuration (a TLS file), not in reaching etcd.
func New(o Options) (*Fleet, error) {
	if _, err := clientConfig(o.Config); err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	probe := o.Probe
	if probe <= 0 {
		probe = time.Second
	}
	f := &Fleet{
		cfg: o.Config, lay: newLayout(o.Config.Name), id: o.ID, admin: o.Admin, version: o.Version,
		log:   o.Log.With().Str("component", "fleet").Str("fleet", o.Config.Name).Str("instance", o.ID).Logger(),
		hooks: o.Hooks, probe: probe, now: now, started: now().UTC(),
		synced: make(chan struct{}), m: newMirror(), instances: map[string]registration{},
		invalidSeen: map[string]int64{}, publishCh: make(chan struct{}, 1), registered: make(chan struct{}), members: map[string]map[string]Member{},
		since: now(), lastErr: "not connected yet",
	}
	if o.Saved != nil && o.Saved.Name == o.Config.Name {
		f.m.restore(*o.Saved)
		f.applied = o.Saved.Revision
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

// ID is this instance's id in the fleet.
func (f *Fleet) ID() string { return f.id }

// Start connects to etcd in the background: the instance serves whether or
// not etcd answers, and retries until it does.
func (f *Fleet) Start() {
	f.wg.Add(3)
	go f.run()
	go f.prober()
	go f.publisher()
}

// Synced is closed once the fleet state has been read from etcd.
func (f *Fleet) Synced() <-chan struct{} { return f.synced }

// Close leaves the fleet: the registry entry goes at once (its lease is
// revoked) and the etcd client closes.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
	f.cliMu.Lock()
	cli := f.cli
	f.cli = nil
	f.cliMu.Unlock()
	if cli != nil {
		cli.Close()
	}
}

// Detach leaves the fleet like Close but leaves the registry entry in place:
// its lease is not revoked (it expires by itself). For an upgrade (SPEC §8),
// where a new process with the same instance id has written its own entry
// over this one.
func (f *Fleet) Detach() {
	f.keepEntry.Store(true)
	f.Close()
}

// Registered is closed once this instance's registry entry has been written.
func (f *Fleet) Registered() <-chan struct{} { return f.registered }

// Want is what the fleet asks of one backend, and whether that is a change
// made on this instance alone.
func (f *Fleet) Want(k Key) (Operator, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.want(k)
}

// Save returns the fleet state to keep in the state file.
func (f *Fleet) Save() Saved {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.save(f.cfg.Name, f.applied)
}

// Store is the state of this instance's link to etcd, without the registry:
// cheap enough to read for every discovery source on every API read.
type Store struct {
	Connected bool
	Since     time.Time // when etcd became unreachable, while it is
	LastError string
	LastSync  time.Time // the last full read of the fleet's keys
}

// Store reports whether etcd is reachable, since when not, and the last sync.
func (f *Fleet) Store() Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Store{Connected: f.connected, Since: f.since, LastError: f.lastErr, LastSync: f.lastSync}
}

// Connected reports whether etcd answered the last question.
func (f *Fleet) Connected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

// Publish asks for the registry entry to be written now, after a change
// others should see soon (an applied operator change, a reload).
func (f *Fleet) Publish() {
	select {
	case f.publishCh <- struct{}{}:
	default:
	}
}

// ErrUnreachable is wrapped by writes refused because etcd cannot be reached
// or did not confirm in time; it wraps status.ErrUnavailable (HTTP 503).
var ErrUnreachable error = unreachable{}

type unreachable struct{}

func (unreachable) Error() string { return "fleet store unreachable" }
func (unreachable) Unwrap() error { return status.ErrUnavailable }

// Update changes one backend's operator key in etcd with change, which gets
// the current value (the zero Operator when there is none), and applies the
// result here once etcd has committed it. It refuses at once when etcd is
// known to be unreachable; a write not confirmed within request_timeout
// reports that its outcome is unknown.
func (f *Fleet) Update(ctx context.Context, k Key, by string, change func(*Operator)) error {
	f.mu.Lock()
	connected, lastErr := f.connected, f.lastErr
	f.mu.Unlock()
	cli := f.client()
	if !connected || cli == nil {
		return fmt.Errorf("%w: %s; nothing was changed (add ?scope=local to change this instance alone)", ErrUnreachable, lastErr)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	key := f.lay.operatorKey(k)
	sent := false
	for attempt := 0; attempt < 10; attempt++ {
		get, err := cli.Get(ctx, key)
		if err != nil {
			return f.writeError(err, sent)
		}
		var cur Operator
		var modRev int64
		if len(get.Kvs) > 0 {
			modRev = get.Kvs[0].ModRevision
			if cur, err = ParseOperator(get.Kvs[0].Value); err != nil {
				// Overwriting an invalid value is how an operator repairs it.
				cur = Operator{}
			}
		}
		next := cur
		change(&next)
		next.By, next.At = by, f.now().UTC()
		sent = true
		txn, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
			Then(clientv3.OpPut(key, next.encode())).
			Commit()
		if err != nil {
			return f.writeError(err, sent)
		}
		if !txn.Succeeded {
			continue // someone else wrote the key meanwhile: read it again
		}
		f.applyEntries(map[Key]entry{k: {op: next, present: true, modRev: txn.Header.Revision}}, txn.Header.Revision)
		return nil
	}
	return fmt.Errorf("%w: %s changed under us 10 times in a row; nothing was changed, try again", ErrUnreachable, key)
}

func (f *Fleet) writeError(err error, sent bool) error {
	if !sent {
		return fmt.Errorf("%w: %v; nothing was changed", ErrUnreachable, describe(f.cfg.Etcd, err))
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: etcd did not confirm the change within %s, so its outcome is unknown: it takes effect everywhere only if etcd committed it; read the backend again before retrying",
			ErrUnreachable, f.cfg.RequestTimeout)
	}
	return fmt.Errorf("%w: %v; the change may or may not have been committed: read the backend again before retrying",
		ErrUnreachable, describe(f.cfg.Etcd, err))
}

// SetLocal changes one backend on this instance alone; the fleet's next
// change to it replaces this.
func (f *Fleet) SetLocal(k Key, by string, change func(*Operator)) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.mu.Lock()
	cur, _ := f.m.want(k)
	change(&cur)
	cur.By, cur.At = by, f.now().UTC()
	f.m.setLocal(k, cur)
	f.mu.Unlock()
	f.changed([]Key{k}, false)
}

// applyEntries applies operator entries seen at revision rev.
func (f *Fleet) applyEntries(es map[Key]entry, rev int64) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	var keys []Key
	f.mu.Lock()
	for k, e := range es {
		if f.m.set(k, e) {
			keys = append(keys, k)
		}
	}
	f.applied = max(f.applied, rev)
	f.mu.Unlock()
	if len(keys) > 0 {
		sortKeys(keys)
		f.changed(keys, false)
	}
}

func (f *Fleet) changed(keys []Key, all bool) {
	if f.hooks.Changed != nil {
		f.hooks.Changed(keys, all)
	}
	f.Publish()
}

func (f *Fleet) client() *clientv3.Client {
	f.cliMu.Lock()
	defer f.cliMu.Unlock()
	return f.cli
}

// connect creates the etcd client once; with auth it fails until the
// credentials are accepted.
func (f *Fleet) connect() (*clientv3.Client, error) {
	if cli := f.client(); cli != nil {
		return cli, nil
	}
	cc, err := clientConfig(f.cfg)
	if err != nil {
		return nil, err
	}
	cc.Context = f.ctx
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, err
	}
	f.cliMu.Lock()
	f.cli = cli
	f.cliMu.Unlock()
	return cli, nil
}

// run keeps the mirror in step with etcd: a full read, then a watch from the
// revision after it, again and again, for as long as the fleet runs.
func (f *Fleet) run() {
	defer f.wg.Done()
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for f.ctx.Err() == nil {
		cli, err := f.connect()
		if err == nil {
			var rev int64
			if rev, err = f.resync(cli); err == nil {
				b.reset()
				werr := f.watch(cli, rev)
				if f.ctx.Err() != nil {
					return
				}
				// Not a verdict on etcd: the next full read gives that.
				f.log.Warn().Err(werr).Msg("fleet watch ended; reading the fleet state again")
			}
		}
		if err != nil && f.ctx.Err() == nil {
			f.lost(err)
		}
		f.sleep(b.next())
	}
}

func (f *Fleet) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.ctx.Done():
	}
}

// lost records that etcd cannot be reached.
func (f *Fleet) lost(err error) {
	timedOut := errors.Is(err, context.DeadlineExceeded)
	err = describe(f.cfg.Etcd, err)
	if timedOut {
		cc, _ := clientConfig(f.cfg)
		err = fmt.Errorf("%w: %s", err, diagnose(f.cfg.Etcd, cc.TLS, min(f.cfg.DialTimeout, time.Second)))
	}
	f.mu.Lock()
	was := f.connected
	changedErr := f.lastErr != err.Error()
	if was {
		f.since = f.now()
	}
	f.connected = false
	f.lastErr = err.Error()
	stop := f.stopWatch
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	if was {
		f.log.Error().Err(err).Msg("fleet store unreachable: serving with the last applied state; writes answer 503")
	} else if changedErr {
		f.log.Error().Err(err).Msg("fleet store still unreachable; retrying")
	}
}

// resync reads every key of the fleet at one revision and applies the
// difference. It returns that revision, for the watch to start after.
func (f *Fleet) resync(cli *clientv3.Client) (int64, error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, f.lay.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	snap := map[Key]entry{}
	keep := map[Key]bool{}
	insts := map[string]registration{}
	members := map[string]map[string]Member{}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		switch {
		case len(key) > len(f.lay.operator) && key[:len(f.lay.operator)] == f.lay.operator:
			k, op, err := f.parseOperator(key, kv.Value, kv.ModRevision)
			if err != nil {
				if k.Service != "" {
					keep[k] = true
				}
				continue
			}
			snap[k] = entry{op: op, present: true, modRev: kv.ModRevision}
		case len(key) > len(f.lay.instances) && key[:len(f.lay.instances)] == f.lay.instances:
			if r, err := parseRegistration(kv.Value); err == nil {
				insts[key[len(f.lay.instances):]] = r
			}
		case strings.HasPrefix(key, f.lay.members):
			svc, backend, err := f.lay.parseMembersKey(key)
			if err != nil {
				f.countInvalid(key, kv.ModRevision, err)
				continue
			}
			m, err := ParseMember(kv.Value)
			if err != nil {
				f.countInvalid(key, kv.ModRevision, err)
				f.mu.Lock()
				old, ok := f.members[svc][backend] // an invalid value keeps what was there
				f.mu.Unlock()
				if !ok {
					continue
				}
				m = old
			}
			if members[svc] == nil {
				members[svc] = map[string]Member{}
			}
			members[svc][backend] = m
		}
	}

	f.applyMu.Lock()
	f.mu.Lock()
	// Keys whose value is invalid keep what was applied before.
	for k := range keep {
		if e, ok := f.m.ops[k]; ok {
			snap[k] = e
		}
	}
	keys := f.m.resync(snap, rev)
	f.instances = insts
	f.members = members
	f.applied = max(f.applied, rev)
	f.lastSync = f.now()
	was := f.connected
	down := f.now().Sub(f.since)
	f.connected = true
	f.lastErr = ""
	f.mu.Unlock()
	f.once.Do(func() { close(f.synced) })
	if was {
		f.log.Info().Int64("revision", rev).Int("changed", len(keys)).Msg("fleet state read again")
	} else {
		f.log.Info().Int64("revision", rev).Int("changed", len(keys)).Dur("unreachable_for_ms", down.Round(time.Millisecond)).
			Msg("fleet store reachable: state read and applied")
	}
	f.changed(keys, true)
	if f.hooks.Members != nil {
		f.hooks.Members(nil)
	}
	f.applyMu.Unlock()
	return rev, nil
}

// parseOperator reads one operator key and value; an invalid one is logged
// and counted once per revision.
func (f *Fleet) parseOperator(key string, value []byte, modRev int64) (Key, Operator, error) {
	k, err := f.lay.parseOperatorKey(key)
	if err == nil {
		var op Operator
		if op, err = ParseOperator(value); err == nil {
			return k, op, nil
		}
	}
	f.countInvalid(key, modRev, err)
	return k, Operator{}, err
}

// countInvalid logs and counts an invalid key once per revision.
func (f *Fleet) countInvalid(key string, modRev int64, err error) {
	f.mu.Lock()
	counted := f.invalidSeen[key] == modRev
	f.invalidSeen[key] = modRev
	f.mu.Unlock()
	if !counted {
		f.invalid.Add(1)
		f.log.Error().Str("key", key).Int64("mod_revision", modRev).Err(err).
			Msg("ignoring invalid key: nothing changed")
	}
}

// watch applies changes from rev+1 on, until the watch fails, etcd is found
// unreachable or the stream makes no progress.
func (f *Fleet) watch(cli *clientv3.Client, rev int64) error {
	wctx, stop := context.WithCancel(clientv3.WithRequireLeader(f.ctx))
	defer stop()
	f.mu.Lock()
	f.stopWatch = stop
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.stopWatch = nil
		f.mu.Unlock()
	}()
	wch := cli.Watch(wctx, f.lay.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for {
		resp, ok := <-wch
		if !ok {
			if wctx.Err() != nil {
				return errors.New("watch stopped: etcd unreachable or the watch made no progress")
			}
			return errors.New("watch channel closed")
		}
		if resp.CompactRevision > 0 {
			return fmt.Errorf("revision %d was compacted (oldest kept %d)", rev+1, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrNoLeader) {
				return fmt.Errorf("the etcd member lost its leader: %w", err)
			}
			return err
		}
		if resp.Canceled {
			return errors.New("watch cancelled by etcd")
		}
		f.applyEvents(resp)
		rev = resp.Header.Revision
	}
}

func (f *Fleet) applyEvents(resp clientv3.WatchResponse) {
	ops := map[Key]entry{}
	var svcs []string // whose members changed
	for _, ev := range resp.Events {
		key := string(ev.Kv.Key)
		switch {
		case len(key) > len(f.lay.operator) && key[:len(f.lay.operator)] == f.lay.operator:
			if ev.Type == clientv3.EventTypeDelete {
				if k, err := f.lay.parseOperatorKey(key); err == nil {
					ops[k] = entry{modRev: ev.Kv.ModRevision}
				}
				continue
			}
			if k, op, err := f.parseOperator(key, ev.Kv.Value, ev.Kv.ModRevision); err == nil {
				ops[k] = entry{op: op, present: true, modRev: ev.Kv.ModRevision}
			}
		case strings.HasPrefix(key, f.lay.members):
			var value []byte
			if ev.Type != clientv3.EventTypeDelete {
				value = ev.Kv.Value
			}
			if svc := f.memberEvent(key, value, ev.Kv.ModRevision); svc != "" && !slices.Contains(svcs, svc) {
				svcs = append(svcs, svc)
			}
		case len(key) > len(f.lay.instances) && key[:len(f.lay.instances)] == f.lay.instances:
			id := key[len(f.lay.instances):]
			f.mu.Lock()
			if ev.Type == clientv3.EventTypeDelete {
				delete(f.instances, id)
			} else if r, err := parseRegistration(ev.Kv.Value); err == nil {
				f.instances[id] = r
			}
			f.mu.Unlock()
		}
	}
	f.applyEntries(ops, resp.Header.Revision)
	if len(svcs) > 0 && f.hooks.Members != nil {
		f.applyMu.Lock()
		f.hooks.Members(svcs)
		f.applyMu.Unlock()
	}
}

// prober asks etcd a linearizable question every probe interval: an answer
// that does not come in request_timeout means etcd is unreachable, and a
// watch that stays behind what etcd answered means the watch is stale.
func (f *Fleet) prober() {
	defer f.wg.Done()
	t := time.NewTicker(f.probe)
	defer t.Stop()
	var behindRev int64 // a revision etcd answered that the watch had not reached
	var behindSince time.Time
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		cli := f.client()
		if cli == nil || !f.Connected() {
			behindRev = 0
			continue
		}
		ctx, cancel := context.WithTimeout(f.ctx, f.cfg.RequestTimeout)
		resp, err := cli.Get(ctx, f.lay.instanceKey(f.id), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			// One member that stopped answering can fail a probe while the
			// others serve: read everything again, and let that read
			// decide whether etcd is unreachable.
			if f.ctx.Err() == nil {
				f.log.Warn().Err(describe(f.cfg.Etcd, err)).Msg("fleet probe failed; reading the fleet state again")
				f.stopWatching()
			}
			behindRev = 0
			continue
		}
		// Ask the watch to report its progress, so an idle watch moves too.
		pctx, pcancel := context.WithTimeout(clientv3.WithRequireLeader(f.ctx), f.cfg.RequestTimeout)
		_ = cli.RequestProgress(pctx)
		pcancel()
		f.mu.Lock()
		applied := f.applied
		f.mu.Unlock()
		switch {
		case behindRev != 0 && applied < behindRev && f.now().Sub(behindSince) > 3*f.probe+f.cfg.RequestTimeout:
			f.log.Warn().Int64("applied", applied).Int64("etcd_revision", behindRev).
				Msg("fleet watch made no progress; reading the fleet state again")
			f.stopWatching()
			behindRev = 0
		case behindRev == 0 || applied >= behindRev:
			behindRev, behindSince = 0, time.Time{}
			if applied < resp.Header.Revision {
				behindRev, behindSince = resp.Header.Revision, f.now()
			}
		}
	}
}

func (f *Fleet) stopWatching() {
	f.mu.Lock()
	stop := f.stopWatch
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// publisher keeps this instance's registry entry alive under its lease and
// rewrites it every publish_interval or when asked.
func (f *Fleet) publisher() {
	defer f.wg.Done()
	var lease clientv3.LeaseID
	defer func() {
		if cli := f.client(); cli != nil && lease != 0 && !f.keepEntry.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = cli.Revoke(ctx, lease)
			cancel()
		}
	}()
	// The lease must be kept alive well within its TTL whatever the
	// publish interval is.
	tick := min(f.cfg.PublishInterval, LeaseTTL*time.Second/3)
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastPut time.Time
	synced := f.synced // register as soon as the first read is done
	for {
		force := false
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-f.publishCh:
			force = true
		case <-synced:
			synced, force = nil, true
		}
		cli := f.client()
		if cli == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(f.ctx, f.cfg.RequestTimeout)
		var err error
		lease, err = f.keepLease(ctx, cli, lease)
		f.refreshes.Add(1)
		if err == nil && (force || time.Since(lastPut) >= f.cfg.PublishInterval-tick/10) {
			if err = f.put(ctx, cli, lease); err == nil {
				lastPut = time.Now()
				f.regOnce.Do(func() { close(f.registered) })
			}
		}
		cancel()
		if err != nil && f.ctx.Err() == nil {
			f.log.Debug().Err(err).Msg("registry entry not refreshed")
		}
	}
}

// keepLease refreshes the registry lease, or grants a new one when there is
// none or it expired (etcd was away longer than its TTL).
func (f *Fleet) keepLease(ctx context.Context, cli *clientv3.Client, lease clientv3.LeaseID) (clientv3.LeaseID, error) {
	if lease != 0 {
		_, err := cli.KeepAliveOnce(ctx, lease)
		if err == nil {
			return lease, nil
		}
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return lease, err
		}
		f.log.Info().Msg("registry lease expired while etcd was away; registering again")
	}
	g, err := cli.Grant(ctx, LeaseTTL)
	if err != nil {
		return 0, err
	}
	return g.ID, nil
}

func (f *Fleet) put(ctx context.Context, cli *clientv3.Client, lease clientv3.LeaseID) error {
	r := f.registration()
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, f.lay.instanceKey(f.id), string(data), clientv3.WithLease(lease))
	return err
}

func (f *Fleet) registration() registration {
	var rep Report
	if f.hooks.Report != nil {
		rep = f.hooks.Report()
	}
	f.mu.Lock()
	applied := f.applied
	f.mu.Unlock()
	return registration{
		ID: f.id, Admin: f.admin, Version: f.version, ConfigDigest: rep.ConfigDigest,
		AppliedRevision: applied, Started: f.started, LastSeen: f.now().UTC(), Backends: rep.Backends,
	}
}

// View is the fleet as this instance sees it, itself from live figures.
func (f *Fleet) View() status.Fleet {
	self := f.registration()
	f.mu.Lock()
	defer f.mu.Unlock()
	v := status.Fleet{
		Name: f.cfg.Name, Self: f.id, Connected: f.connected, Revision: f.applied,
		OperatorRevision: f.m.opRev, LastError: f.lastErr, LastSync: f.lastSync,
		InvalidKeys: f.invalid.Load(),
	}
	if !f.connected {
		since := f.since
		v.DisconnectedSince = &since
	}
	v.Instances = append(v.Instances, self.instance(true))
	for id, r := range f.instances {
		if id != f.id {
			v.Instances = append(v.Instances, r.instance(false))
		}
	}
	sort.Slice(v.Instances, func(i, j int) bool { return v.Instances[i].ID < v.Instances[j].ID })
	return v
}

// Others returns the other live instances' registry entries, for summing a
// backend over the fleet.
func (f *Fleet) Others() []status.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]status.Instance, 0, len(f.instances))
	for id, r := range f.instances {
		if id != f.id {
			out = append(out, r.instance(false))
		}
	}
	return out
}

// InvalidKeys counts operator keys ignored because their value was invalid.
func (f *Fleet) InvalidKeys() int64 { return f.invalid.Load() }

// backoff grows a delay by half each time, with jitter, up to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*3/2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}
