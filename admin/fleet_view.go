package admin

import (
	"fmt"
	"strings"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// The dashboard's fleet (SPEC §6): a banner while the fleet store is
// unreachable, a panel with the instances and which of them disagree with
// this one, and per backend on how many instances it is draining. Outside a
// fleet none of it is rendered.

// fleetPanel is the fleet part of the overview.
type fleetPanel struct {
	Name        string
	Revision    int64
	Connected   bool
	Banner      string // while the store is unreachable, else ""
	BannerTitle string
	LastError   string
	Summary     string
	SyncTitle   string
	InvalidKeys string // "" when none
	Instances   []instanceView
}

// instanceView is one row of the instances table.
type instanceView struct {
	ID            string
	Self          bool
	Admin         string
	AdminLink     bool // Admin is an http(s) URL
	Version       string
	Digest        string // shortened
	DigestFull    string
	Applied       int64
	Started       string
	StartedTitle  string
	LastSeen      string
	LastSeenTitle string
	Marks         []markView // how it disagrees with this instance
}

// markView is a badge saying how an instance disagrees with this one.
type markView struct {
	Text  string
	Title string
}

// backendFleetView is a backend's line about the fleet.
type backendFleetView struct {
	Draining string // "draining on 2/3", or ""
	Title    string
	Drained  bool // draining on every live instance, no connection left on any
}

// digestLen is how much of a configuration digest the table shows.
const digestLen = 12

func (s *Server) fleetPanel(now time.Time) *fleetPanel {
	f, ok := s.fleetView()
	if !ok {
		return nil
	}
	p := &fleetPanel{
		Name:      f.Name,
		Revision:  f.Revision,
		Connected: f.Connected,
		Instances: make([]instanceView, 0, len(f.Instances)),
	}
	if !f.Connected {
		p.Banner = "Fleet store unreachable"
		if since := f.DisconnectedSince; since != nil {
			p.Banner += " for " + humanDuration(now.Sub(*since))
			p.BannerTitle = "unreachable since " + since.Format(time.RFC3339)
		}
		p.Banner += " — serving with the last applied state; changes need ?scope=local"
		p.LastError = f.LastError
	}
	if f.InvalidKeys > 0 {
		p.InvalidKeys = humanCount(f.InvalidKeys)
	}
	var self *status.Instance
	for i := range f.Instances {
		if in := &f.Instances[i]; in.Self || (f.Self != "" && in.ID == f.Self) {
			self = in
			break
		}
	}
	disagree := 0
	for i := range f.Instances {
		in := &f.Instances[i]
		v := instanceView{
			ID:         in.ID,
			Self:       in == self,
			Admin:      in.Admin,
			AdminLink:  strings.HasPrefix(in.Admin, "http://") || strings.HasPrefix(in.Admin, "https://"),
			Version:    in.Version,
			Digest:     shortDigest(in.ConfigDigest),
			DigestFull: in.ConfigDigest,
			Applied:    in.AppliedRevision,
		}
		v.Started, v.StartedTitle = ago(now, in.Started)
		v.LastSeen, v.LastSeenTitle = ago(now, in.LastSeen)
		if !v.Self {
			v.Marks = disagreement(in, self, f.OperatorRevision)
		}
		if len(v.Marks) > 0 {
			disagree++
		}
		p.Instances = append(p.Instances, v)
	}
	n := len(f.Instances)
	p.Summary = fmt.Sprintf("%d live instance%s", n, plural(n))
	switch disagree {
	case 0:
	case 1:
		p.Summary += " · 1 disagrees with this one"
	default:
		p.Summary += fmt.Sprintf(" · %d disagree with this one", disagree)
	}
	if f.LastSync.IsZero() {
		p.Summary += " · not synced yet"
	} else {
		p.Summary += " · last full sync " + humanDuration(now.Sub(f.LastSync)) + " ago"
		p.SyncTitle = "last full read of the fleet state " + f.LastSync.Format(time.RFC3339)
	}
	return p
}

// disagreement says how instance in differs from this one: another
// configuration file, or it has not applied the newest operator change this
// instance has (opRev, Fleet.OperatorRevision). Applied revisions are not
// compared with each other: an etcd revision counts every write, the
// registry's included, so two instances in step rarely show the same one.
// self is this instance's registry entry, nil if it is not there.
func disagreement(in, self *status.Instance, opRev int64) []markView {
	var marks []markView
	if self != nil && self.ConfigDigest != "" && in.ConfigDigest != self.ConfigDigest {
		marks = append(marks, markView{"config differs", fmt.Sprintf(
			"its configuration file's digest %s differs from this instance's %s: the two do not run the same configuration",
			orNone(shortDigest(in.ConfigDigest)), shortDigest(self.ConfigDigest))})
	}
	if in.AppliedRevision < opRev {
		marks = append(marks, markView{"behind", fmt.Sprintf(
			"it has applied the fleet's state up to etcd revision %d, and this instance an operator change of revision %d: it has not applied that change yet",
			in.AppliedRevision, opRev)})
	}
	return marks
}

// backendFleet is the backend's fleet line, nil outside a fleet.
func backendFleet(b *status.Backend) *backendFleetView {
	f := b.Fleet
	if f == nil {
		return nil
	}
	v := &backendFleetView{Drained: f.Drained}
	if f.Draining > 0 {
		v.Draining = fmt.Sprintf("draining on %d/%d", f.Draining, f.Instances)
		conns := "connections"
		if f.ActiveConnections == 1 {
			conns = "connection"
		}
		v.Title = fmt.Sprintf("draining on %d of the %d live instances that have it; %s %s left over the fleet",
			f.Draining, f.Instances, humanCount(f.ActiveConnections), conns)
	}
	if v.Draining == "" && !v.Drained {
		return nil
	}
	return v
}

// shortDigest shortens a configuration digest to digestLen characters, after
// an algorithm prefix such as "sha256:".
func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && i < 10 {
		d = d[i+1:]
	}
	if len(d) > digestLen {
		d = d[:digestLen]
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ago formats t as "3m 12s ago" with its RFC 3339 form as the title; a zero
// time is "".
func ago(now, t time.Time) (text, title string) {
	if t.IsZero() {
		return "", ""
	}
	return humanDuration(now.Sub(t)) + " ago", t.Format(time.RFC3339)
}

// fleetFilter is what the filter box matches of a backend's fleet state.
func fleetFilter(b *status.Backend) string {
	var words []string
	if b.Diverged != nil && *b.Diverged {
		words = append(words, "diverged")
	}
	if b.Fleet != nil && b.Fleet.Drained {
		words = append(words, "fleet drained")
	}
	return strings.Join(words, " ")
}
