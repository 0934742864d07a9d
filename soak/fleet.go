package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/balancel4/balance-l4/internal/etcdtest"
)

// A fleet soak (Options.Etcd) runs several balance-l4 instances on one real
// etcd cluster of three member processes. Besides the chaos every soak has,
// whose drains, undrains and weights now go through a random instance's API
// and so through etcd, a second loop hurts etcd itself: it kills a member,
// stops the leader, or takes two members away, restores them, and waits
// for the cluster to serve and for every instance to be connected again.
// At the end every instance must agree with etcd, and with each other.

// fleetName is the [fleet] name of a fleet soak's instances.
const fleetName = "soak"

// Bounds of the etcd chaos and of the waits around it.
const (
	// etcdGrace is how long after every instance said it was connected
	// again a fleet-wide change may still be refused: one in flight.
	etcdGrace = 2 * time.Second
	// recoveryTarget is SPEC §6's bound: an instance resynchronises within
	// 10 s of etcd serving again.
	recoveryTarget = 10 * time.Second
	recoveryLimit  = 30 * time.Second // how long the soak waits for it
	healthyLimit   = 30 * time.Second // for etcd to serve after a restart
	agreeLimit     = 15 * time.Second // for the instances to agree with etcd
	maxEtcdFaults  = 100_000          // bounds the loop whatever the duration
)

// etcdActions are what the etcd chaos does; weight is the relative chance.
var etcdActions = []struct {
	name   string
	weight int
}{
	{"kill-member", 4}, // SIGKILL one member, restart it 0.5-3 s later
	{"stop-leader", 3}, // SIGTERM the leader, restart it 0.5-3 s later
	{"quorum-loss", 2}, // SIGKILL two members at once, restart them 1-4 s later
}

// etcdFault is one etcd fault: from the first member's end until every
// instance said it was connected again after etcd served again.
type etcdFault struct {
	Kind               string
	Members            []int
	Start, Served, End time.Time
}

// etcdFaultLog journals the etcd faults, so that an admin answer can be
// judged by whether etcd was whole when it was asked.
type etcdFaultLog struct {
	mu     sync.Mutex
	faults []etcdFault
}

func (l *etcdFaultLog) begin(kind string, members []int, at time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, etcdFault{Kind: kind, Members: members, Start: at, Served: farFuture, End: farFuture})
	return len(l.faults) - 1
}

func (l *etcdFaultLog) served(i int, at time.Time) {
	l.mu.Lock()
	l.faults[i].Served = at
	l.mu.Unlock()
}

func (l *etcdFaultLog) end(i int, at time.Time) {
	l.mu.Lock()
	l.faults[i].End = at
	l.mu.Unlock()
}

// during reports whether a fault was under way, or not yet recovered from
// by every instance (plus etcdGrace), at some time in [from, to].
func (l *etcdFaultLog) during(from, to time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.faults) - 1; i >= 0; i-- {
		f := l.faults[i]
		if !f.Start.After(to) && !from.After(f.End.Add(etcdGrace)) {
			return true
		}
	}
	return false
}

// fleetRun is the fleet part of a soak: the cluster, its chaos, and the
// checks at the end.
type fleetRun struct {
	cluster *etcdtest.Cluster
	cli     *clientv3.Client // to every member: leader, operator keys
	faults  *etcdFaultLog
	rng     *rand.Rand
	logf    func(format string, args ...any)
	problem func(format string, args ...any)

	// Written by chaos, read once it has ended.
	counts     map[string]int
	writes     int             // weights changed while members were down
	refused    int             // of which answered 503 "fleet store unreachable"
	views      int             // GET /api/v1/fleet while members were down
	viewsDown  int             // of which said connected: false
	recoveries []time.Duration // from etcd serving again to every instance connected
	err        error           // a harness failure: etcd would not come back

	// Written by finish and restore.
	etcdHealthy, connected, registry bool
	agreed, restored                 Agreement
}

func newFleetRun(c *etcdtest.Cluster, seed uint64, logf, problem func(string, ...any)) (*fleetRun, error) {
	cli, err := clientv3.New(etcdConfig(c.Endpoints()))
	if err != nil {
		return nil, fmt.Errorf("soak: etcd client: %w", err)
	}
	return &fleetRun{
		cluster: c, cli: cli, faults: &etcdFaultLog{}, rng: rand.New(rand.NewPCG(seed, 0xe7cd)),
		logf: logf, problem: problem, counts: map[string]int{},
	}, nil
}

func etcdConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
}

func (f *fleetRun) close() { f.cli.Close() }

// chaos injects etcd faults one after another, 1-4 s apart, until stop is
// closed: first one of each kind in random order, then at random by weight.
// Each fault is over only when etcd serves again and every instance is
// connected again; a fault under way when stop closes is cut short.
func (f *fleetRun) chaos(stop <-chan struct{}, insts []*instance) {
	defer f.heal()
	first := f.rng.Perm(len(etcdActions))
	total := 0
	for _, a := range etcdActions {
		total += a.weight
	}
	for n := range maxEtcdFaults {
		if !sleepOrStop(stop, time.Duration(1000+f.rng.IntN(3000))*time.Millisecond) {
			return
		}
		var kind string
		if n < len(first) {
			kind = etcdActions[first[n]].name
		} else {
			k := f.rng.IntN(total)
			for _, a := range etcdActions {
				if k -= a.weight; k < 0 {
					kind = a.name
					break
				}
			}
		}
		f.inject(kind, stop, insts)
		if f.err != nil {
			return
		}
	}
}

// inject does one etcd fault and waits for the fleet to recover from it.
func (f *fleetRun) inject(kind string, stop <-chan struct{}, insts []*instance) {
	var victims []int
	var kill []bool
	var down time.Duration
	switch kind {
	case "kill-member":
		victims, kill = []int{f.rng.IntN(f.cluster.Members())}, []bool{true}
		down = time.Duration(500+f.rng.IntN(2500)) * time.Millisecond
	case "stop-leader":
		l, err := f.leader(5 * time.Second)
		if err != nil {
			f.problem("etcd chaos: %v; stop-leader skipped", err)
			return
		}
		victims, kill = []int{l}, []bool{false}
		down = time.Duration(500+f.rng.IntN(2500)) * time.Millisecond
	case "quorum-loss":
		// SIGKILL: a SIGTERMed member takes seconds to stop (it waits for
		// its clients' streams), and the quorum would be gone for longer.
		victims, kill = f.rng.Perm(f.cluster.Members())[:2], []bool{true, true}
		down = time.Duration(1000+f.rng.IntN(3000)) * time.Millisecond
	}
	start := time.Now()
	idx := f.faults.begin(kind, victims, start)
	// Two members go down together, not one after the other.
	how := make([]string, len(victims))
	var halting sync.WaitGroup
	for k, m := range victims {
		how[k] = fmt.Sprintf("member%d SIGTERM", m)
		if kill[k] {
			how[k] = fmt.Sprintf("member%d SIGKILL", m)
		}
		halting.Go(func() {
			halt := f.cluster.Stop
			if kill[k] {
				halt = f.cluster.Kill
			}
			if err := halt(m); err != nil {
				f.logf("etcd %s: %v", kind, err)
			}
		})
	}
	halting.Wait()
	f.counts[kind]++
	f.logf("etcd %s: %s (down %v after the signal); down for %v", kind, strings.Join(how, ", "), time.Since(start).Round(time.Millisecond), down)
	f.writeWhile(stop, down, insts)
	for _, m := range victims {
		if err := f.restart(m); err != nil {
			f.err = err
			f.faults.end(idx, time.Now())
			return
		}
	}
	served, err := f.waitHealthy(healthyLimit)
	if err != nil {
		f.err = err
		f.faults.end(idx, time.Now())
		return
	}
	f.faults.served(idx, served)
	connected, ok := f.waitConnected(insts, recoveryLimit)
	f.faults.end(idx, connected)
	rec := connected.Sub(served)
	f.recoveries = append(f.recoveries, rec)
	switch {
	case !ok:
		f.problem("etcd %s: not every instance connected %v after etcd served again", kind, recoveryLimit)
	case rec > recoveryTarget:
		f.problem("etcd %s: every instance connected only %v after etcd served again (SPEC: within %v)", kind, rec.Round(time.Millisecond), recoveryTarget)
	}
	f.logf("etcd %s over: etcd served again after %v, every instance connected %v later",
		kind, served.Sub(start).Round(time.Millisecond), rec.Round(time.Millisecond))
}

// writeWhile changes weights through random instances every 200-500 ms
// for d (or until stop closes), so that fleet-wide changes meet every kind
// of etcd fault and not only those the main chaos happens to hit. Weights
// need no bookkeeping; b0, the anchor, never gets 0.
func (f *fleetRun) writeWhile(stop <-chan struct{}, d time.Duration, insts []*instance) {
	end := time.Now().Add(d)
	for range 100 {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		if !sleepOrStop(stop, min(left, time.Duration(200+f.rng.IntN(300))*time.Millisecond)) {
			return
		}
		in := insts[f.rng.IntN(len(insts))]
		spec := in.spec
		i := f.rng.IntN(len(spec.Backends))
		w, want := f.rng.IntN(257), okOrGone
		if i == 0 {
			w, want = 1+f.rng.IntN(256), []int{http.StatusOK}
		}
		code, body, _ := in.admin.Do(Request{Method: http.MethodPut, Path: "/api/v1/services/" + serviceName + "/backends/" + spec.Backends[i].Name + "/weight",
			Body: []byte(`{"weight": ` + strconv.Itoa(w) + `}`), Want: want, FleetWrite: true})
		f.writes++
		if IsFleetRefusal(code, body) {
			f.refused++
		}
		f.logf("etcd chaos: weight of backend %d to %d via %s: %d %s", i, w, in.name(), code, shorten(string(body), 80))
		// The fleet view answers 200 from local state all the same.
		if v, err := fleetView(in); err == nil {
			f.views++
			if !v.Connected {
				f.viewsDown++
			}
		}
	}
}

// heal restarts any member that is down (a harness that stopped halfway).
func (f *fleetRun) heal() {
	for i := range f.cluster.Members() {
		if !f.cluster.Member(i).Running() {
			if err := f.restart(i); err != nil && f.err == nil {
				f.err = err
			}
		}
	}
}

// restart starts member i again; a port lent meanwhile to an outgoing
// connection may need a few tries.
func (f *fleetRun) restart(i int) error {
	var err error
	for range 3 {
		if err = f.cluster.Restart(i); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("restarting etcd member %d: %w", i, err)
}

// leader returns the index of the member that leads.
func (f *fleetRun) leader(limit time.Duration) (int, error) {
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		for i := range f.cluster.Members() {
			m := f.cluster.Member(i)
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := f.cli.Status(ctx, m.ClientURL)
			cancel()
			if err == nil && st.Leader == st.Header.MemberId {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no etcd leader after %v", limit)
		}
	}
}

// waitHealthy waits until every member runs and serves a linearizable read
// by itself (there is a quorum and restarted members caught up), and
// returns when that was so.
func (f *fleetRun) waitHealthy(limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for i := range f.cluster.Members() {
		for {
			if !f.cluster.Member(i).Running() {
				return time.Time{}, fmt.Errorf("etcd member %d is not running", i)
			}
			err := f.memberServes(i)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("etcd member %d not serving %v after its restart: %w\n%s", i, limit, err, f.cluster.Member(i).Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Now(), nil
}

func (f *fleetRun) memberServes(i int) error {
	cli, err := clientv3.New(etcdConfig([]string{f.cluster.Member(i).ClientURL}))
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = cli.Get(ctx, "/soak/health")
	return err
}

// fleetView reads an instance's GET /api/v1/fleet.
func fleetView(in *instance) (apiFleet, error) {
	var v apiFleet
	err := in.admin.GetJSON("/api/v1/fleet", &v)
	return v, err
}

// waitConnected waits until every instance, asked from now on, says it is
// connected to etcd, and returns when the last one said so (or, and false,
// when limit passed).
func (f *fleetRun) waitConnected(insts []*instance, limit time.Duration) (time.Time, bool) {
	seen := make([]bool, len(insts))
	left := len(insts)
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		for k, in := range insts {
			if !seen[k] {
				if v, err := fleetView(in); err == nil && v.Connected {
					seen[k] = true
					left--
				}
			}
		}
		if left == 0 {
			return time.Now(), true
		}
		if time.Now().After(deadline) {
			return time.Now(), false
		}
	}
}

// waitFleet waits until every instance is connected and its registry lists
// every instance, and nothing else.
func (f *fleetRun) waitFleet(insts []*instance, limit time.Duration) error {
	var want []string
	for _, in := range insts {
		want = append(want, in.name())
	}
	var why string
	err := waitUntil(limit, func() (bool, error) {
		for _, in := range insts {
			v, err := fleetView(in)
			if err != nil {
				why = err.Error()
				return false, nil
			}
			var ids []string
			for _, i := range v.Instances {
				ids = append(ids, i.ID)
			}
			slices.Sort(ids)
			if !v.Connected || !slices.Equal(ids, want) {
				why = fmt.Sprintf("%s: connected %v (%s), registry %v, want %v", in.name(), v.Connected, v.LastError, ids, want)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the fleet: %w: %s", err, why)
	}
	return nil
}

// finish checks the fleet once the chaos is over: every member running and
// serving, then every instance connected and listing all in its registry.
func (f *fleetRun) finish(insts []*instance) {
	f.heal()
	_, err := f.waitHealthy(healthyLimit)
	f.etcdHealthy = err == nil
	if err != nil {
		f.problem("at the end: %v", err)
	}
	_, f.connected = f.waitConnected(insts, recoveryLimit)
	if !f.connected {
		f.problem("at the end: not every instance connected to etcd within %v", recoveryLimit)
	}
	err = f.waitFleet(insts, 20*time.Second)
	f.registry = err == nil
	if err != nil {
		f.problem("at the end: %v", err)
	}
	f.logf("fleet at the end: etcd healthy %v, every instance connected %v, registries complete %v", f.etcdHealthy, f.connected, f.registry)
}

// Agreement is whether a fleet's instances and etcd agreed on every
// backend's drain and weight.
type Agreement struct {
	OK    bool
	Took  time.Duration // until they did
	State string        // what they agreed on, or the last disagreement
}

// operatorValue is an operator key's value as SPEC §6 writes it.
type operatorValue struct {
	Drain  bool `json:"drain"`
	Weight *int `json:"weight"`
}

// operators reads every operator key of the soak's service from etcd.
func (f *fleetRun) operators() (map[string]operatorValue, error) {
	prefix := "/balance-l4/" + fleetName + "/operator/" + serviceName + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading %s from etcd: %w", prefix, err)
	}
	ops := map[string]operatorValue{}
	for _, kv := range resp.Kvs {
		var v operatorValue
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("etcd holds an invalid value at %s: %q: %w", kv.Key, kv.Value, err)
		}
		ops[strings.TrimPrefix(string(kv.Key), prefix)] = v
	}
	return ops, nil
}

// agree waits until, for every backend, every instance shows the drain and
// weight etcd holds (the file's weight when etcd's is null) and none says it
// diverged.
func (f *fleetRun) agree(insts []*instance, when string) Agreement {
	start := time.Now()
	var state string
	for deadline := start.Add(agreeLimit); ; time.Sleep(200 * time.Millisecond) {
		var ok bool
		ok, state = f.compare(insts)
		if ok {
			a := Agreement{OK: true, Took: time.Since(start), State: state}
			f.logf("the fleet agrees with etcd %s (after %v): %s", when, a.Took.Round(time.Millisecond), state)
			return a
		}
		if time.Now().After(deadline) {
			f.problem("the fleet does not agree with etcd %s, %v after asking: %s", when, agreeLimit, state)
			return Agreement{Took: time.Since(start), State: state}
		}
	}
}

func (f *fleetRun) compare(insts []*instance) (bool, string) {
	ops, err := f.operators()
	if err != nil {
		return false, err.Error()
	}
	views := make([]map[string]apiBackend, len(insts))
	for k, in := range insts {
		var svc apiService
		if err := in.admin.GetJSON("/api/v1/services/"+serviceName, &svc); err != nil {
			return false, fmt.Sprintf("%s: %v", in.name(), err)
		}
		views[k] = map[string]apiBackend{}
		for _, b := range svc.Backends {
			views[k][b.Name] = b
		}
	}
	var agreed, bad []string
	for _, b := range insts[0].spec.Backends {
		op, inEtcd := ops[b.Name]
		delete(ops, b.Name)
		etcdSays := "no key"
		if inEtcd {
			etcdSays = fmt.Sprintf("drain %v weight %s", op.Drain, weightText(op.Weight))
		}
		want := b.Weight
		if op.Weight != nil {
			want = *op.Weight
		}
		for k, in := range insts {
			v, ok := views[k][b.Name]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s lacks %s", in.name(), b.Name))
				continue
			}
			w := v.ConfiguredWeight
			if op.Weight != nil {
				w = *op.Weight
			}
			diverged := v.Diverged != nil && *v.Diverged
			if (v.State == "draining") != op.Drain || v.Weight != w || diverged {
				bad = append(bad, fmt.Sprintf("%s has %s %s weight %d (file %d)%s, etcd %s",
					in.name(), b.Name, v.State, v.Weight, v.ConfiguredWeight, map[bool]string{true: " diverged"}[diverged], etcdSays))
			}
		}
		s := fmt.Sprintf("%s w%d", b.Name, want)
		if op.Drain {
			s = fmt.Sprintf("%s draining w%d", b.Name, want)
		}
		agreed = append(agreed, s)
	}
	for _, name := range slices.Sorted(maps.Keys(ops)) {
		// The API writes keys only for backends it has; the soak's all
		// have the same five.
		bad = append(bad, fmt.Sprintf("etcd holds a key for unknown backend %q", name))
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, strings.Join(agreed, ", ")
}

func weightText(w *int) string {
	if w == nil {
		return "null"
	}
	return fmt.Sprint(*w)
}

// sleepOrStop sleeps for d and reports true, or false as soon as stop is
// closed.
func sleepOrStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// FleetSummary is what a fleet soak adds to the summary.
type FleetSummary struct {
	Name         string
	Instances    []string
	EtcdMembers  int
	EtcdActions  map[string]int // by kind
	Refused      map[string]int // the main chaos's fleet-wide changes answered 503 "fleet store unreachable", by verb
	DownWrites   int            // weights the etcd chaos changed while members were down
	DownRefused  int            // of which answered 503 "fleet store unreachable"
	DownViews    int            // GET /api/v1/fleet while members were down
	DownViewsOff int            // of which said connected: false
	Recoveries   int            // etcd faults recovered from
	RecoveryMax  time.Duration  // the longest, from etcd serving again to every instance connected
	RecoveryLate int            // beyond SPEC's 10 s, or never
	EtcdHealthy  bool           // at the end, every member running and serving
	Connected    bool           // at the end, every instance connected
	Registry     bool           // at the end, every instance's registry lists all
	AfterChaos   Agreement      // the instances and etcd, once the chaos was over
	AfterRestore Agreement      // and once restore had undrained all and set weights to 1
}

func (f *fleetRun) summary(insts []*instance, refused map[string]int) *FleetSummary {
	s := &FleetSummary{
		Name: fleetName, EtcdMembers: f.cluster.Members(), EtcdActions: f.counts, Refused: refused,
		DownWrites: f.writes, DownRefused: f.refused, DownViews: f.views, DownViewsOff: f.viewsDown,
		Recoveries: len(f.recoveries), EtcdHealthy: f.etcdHealthy, Connected: f.connected, Registry: f.registry,
		AfterChaos: f.agreed, AfterRestore: f.restored,
	}
	for _, in := range insts {
		s.Instances = append(s.Instances, in.name())
	}
	for _, r := range f.recoveries {
		s.RecoveryMax = max(s.RecoveryMax, r)
		if r > recoveryTarget {
			s.RecoveryLate++
		}
	}
	return s
}

func (s *FleetSummary) failures() []string {
	var f []string
	miss := func(cond bool, format string, args ...any) {
		if cond {
			f = append(f, fmt.Sprintf(format, args...))
		}
	}
	total := 0
	for _, n := range s.EtcdActions {
		total += n
	}
	miss(total == 0, "no etcd fault was injected")
	miss(s.RecoveryLate > 0, "%d times not every instance was connected within %v of etcd serving again", s.RecoveryLate, recoveryTarget)
	miss(!s.EtcdHealthy, "etcd was not whole and healthy at the end")
	miss(!s.Connected, "not every instance was connected to etcd at the end")
	miss(!s.Registry, "not every instance's registry listed every instance at the end")
	miss(!s.AfterChaos.OK, "after the chaos the instances disagree with etcd: %s", s.AfterChaos.State)
	miss(!s.AfterRestore.OK, "after restoring the instances disagree with etcd: %s", s.AfterRestore.State)
	return f
}

func (s *FleetSummary) write(b *strings.Builder) {
	total := 0
	for _, n := range s.EtcdActions {
		total += n
	}
	fmt.Fprintf(b, "  fleet                    %q: %d instances (%s) on %d etcd members\n", s.Name, len(s.Instances), strings.Join(s.Instances, " "), s.EtcdMembers)
	fmt.Fprintf(b, "  etcd actions             %d: %v\n", total, s.EtcdActions)
	fmt.Fprintf(b, "  writes while etcd down   %d weight changes through random instances, %d answered 503 fleet store unreachable; %d of %d fleet views said connected: false\n",
		s.DownWrites, s.DownRefused, s.DownViewsOff, s.DownViews)
	fmt.Fprintf(b, "  etcd recoveries          %d, every instance connected at most %v after etcd served again (target %v; %d late)\n",
		s.Recoveries, s.RecoveryMax.Round(time.Millisecond), recoveryTarget, s.RecoveryLate)
	fmt.Fprintf(b, "  at the end               etcd healthy %v, every instance connected %v, every registry lists all %d %v\n",
		s.EtcdHealthy, s.Connected, len(s.Instances), s.Registry)
	for _, a := range []struct {
		what string
		a    Agreement
	}{{"after the chaos", s.AfterChaos}, {"after restoring", s.AfterRestore}} {
		fmt.Fprintf(b, "  agreement %-15s %v (%v): %s\n", a.what, a.a.OK, a.a.Took.Round(time.Millisecond), a.a.State)
	}
}
