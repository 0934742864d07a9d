package discovery

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/balancel4/balance-l4/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// faultyDNS is an in-process DNS server for what dnsmasq cannot be made to
// do: SERVFAIL, truncation with a TCP retry, silence.
type faultyDNS struct {
	addr string
	mu   sync.Mutex
	tcp  int // questions asked over TCP
}

func startFaultyDNS(t *testing.T) *faultyDNS {
	t.Helper()
	f := &faultyDNS{}
	var pc net.PacketConn
	var ln net.Listener
	for range 10 { // UDP and TCP on one port
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if ln == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	f.addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { f.serve(w, r, false) })}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { f.serve(w, r, true) })}
	var wg sync.WaitGroup
	for _, s := range []*dns.Server{udp, tcp} {
		wg.Add(1)
		go func() { defer wg.Done(); s.ActivateAndServe() }()
	}
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
		wg.Wait()
	})
	return f
}

func rr(_ *testing.T, s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

func (f *faultyDNS) serve(w dns.ResponseWriter, r *dns.Msg, overTCP bool) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	if overTCP {
		f.mu.Lock()
		f.tcp++
		f.mu.Unlock()
	}
	switch {
	case q.Name == "_ok._tcp.t." && q.Qtype == dns.TypeSRV:
		m.Answer = []dns.RR{
			rr(nil, "_ok._tcp.t. 60 IN SRV 10 0 7001 a.t."),
			rr(nil, "_ok._tcp.t. 60 IN SRV 10 500 7002 b.t."),
			rr(nil, "_ok._tcp.t. 60 IN SRV 20 5 7003 c.t."),
			rr(nil, "_ok._tcp.t. 60 IN SRV 10 5 7004 ."),
		}
		m.Extra = []dns.RR{rr(nil, "a.t. 60 IN A 127.0.0.1"), rr(nil, "b.t. 60 IN AAAA ::1"), rr(nil, "b.t. 60 IN A 127.0.0.2")}
	case q.Name == "c.t." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{rr(nil, "c.t. 60 IN A 127.0.0.3")}
	case q.Name == "servfail.t.":
		m.Rcode = dns.RcodeServerFailure
	case q.Name == "nx.t.":
		m.Rcode = dns.RcodeNameError
	case q.Name == "big.t." && q.Qtype == dns.TypeA:
		if !overTCP {
			m.Truncated = true
			break
		}
		for _, ip := range []string{"127.0.0.9", "127.0.0.7", "127.0.0.8"} {
			m.Answer = append(m.Answer, rr(nil, "big.t. 60 IN A "+ip))
		}
	case q.Name == "silent.t.":
		return // no answer at all
	}
	w.WriteMsg(m)
}

func lookupFor(name, server string) *dnsLookup {
	return newDNSLookup(config.Discovery{Type: "dns", Name: name, Resolver: server, Interval: 300 * time.Millisecond, Weight: 3})
}

func TestSRVLookup(t *testing.T) {
	f := startFaultyDNS(t)
	got, err := lookupFor("_ok._tcp.t", f.addr).lookup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Backend{
		{Name: "a.t:7001", Address: "127.0.0.1:7001", Weight: 1},               // weight 0 counts as 1
		{Name: "b.t:7002", Address: "127.0.0.2:7002", Weight: 256},             // IPv4 first; 500 capped at 256
		{Name: "c.t:7003", Address: "127.0.0.3:7003", Weight: 5, Backup: true}, // a higher priority is a backup
	}
	if !slices.Equal(got, want) {
		t.Fatalf("SRV lookup =\n%+v\nwant\n%+v", got, want)
	}
}

func TestAddressLookupsAndFaults(t *testing.T) {
	f := startFaultyDNS(t)
	ctx := context.Background()

	// A truncated UDP answer is asked again over TCP.
	got, err := lookupFor("big.t:9000", f.addr).lookup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(got), []string{"127.0.0.7:9000", "127.0.0.8:9000", "127.0.0.9:9000"}) || got[0].Weight != 3 {
		t.Fatalf("truncated answer: %+v", got)
	}
	if f.tcp == 0 {
		t.Fatal("no TCP retry after a truncated answer")
	}

	// NXDOMAIN is an answer with nothing in it.
	if got, err := lookupFor("nx.t:9000", f.addr).lookup(ctx); err != nil || len(got) != 0 {
		t.Fatalf("NXDOMAIN: %v, %v; want an empty answer", got, err)
	}
	// SERVFAIL and silence are failures.
	if _, err := lookupFor("servfail.t:9000", f.addr).lookup(ctx); err == nil || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("SERVFAIL: %v", err)
	}
	if _, err := lookupFor("silent.t:9000", f.addr).lookup(ctx); err == nil {
		t.Fatal("a server that never answers gave an answer")
	}
	// An address literal needs no DNS.
	if got, err := lookupFor("[::1]:9000", "").lookup(ctx); err != nil || got[0].Address != "[::1]:9000" {
		t.Fatalf("literal: %v, %v", got, err)
	}
}

// TestWatcherKeepsTheLastGoodSet: failures change nothing, and what
// changes is applied once.
func TestWatcherKeepsTheLastGoodSet(t *testing.T) {
	f := startFaultyDNS(t)
	now := time.Unix(1000, 0)
	var applied [][]config.Backend
	src := config.Discovery{Type: "dns", Name: "_ok._tcp.t", Resolver: f.addr, Interval: 300 * time.Millisecond, Hold: time.Minute}
	w := newWatcher(Options{Service: "s", Source: src, Log: zerolog.Nop(), Now: func() time.Time { return now },
		Apply: func(bs []config.Backend) error { applied = append(applied, bs); return nil }})
	w.lookup = newDNSLookup(src)
	ctx := context.Background()
	w.Poll(ctx)
	w.Poll(ctx)
	if len(applied) != 1 || len(applied[0]) != 3 {
		t.Fatalf("applied %d times (%v), want once with 3 backends", len(applied), applied)
	}
	w.lookup.src.Name = "servfail.t:1"
	w.Poll(ctx)
	st := w.Status()
	if len(applied) != 1 || st.Errors != 1 || !strings.Contains(st.LastError, "SERVFAIL") || st.Backends != 3 || st.LastSuccess == nil {
		t.Fatalf("after SERVFAIL: applied %d, status %+v", len(applied), st)
	}
	// An empty answer keeps everything for hold, then empties the pool.
	w.lookup.src.Name = "nx.t:1"
	w.Poll(ctx)
	if len(applied) != 1 {
		t.Fatalf("an empty answer changed the pool at once: %v", applied[len(applied)-1])
	}
	now = now.Add(2 * time.Minute)
	w.Poll(ctx)
	if len(applied) != 2 || len(applied[1]) != 0 {
		t.Fatalf("after hold: %v", applied)
	}
}
