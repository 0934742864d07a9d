package admin

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/balancel4/balance-l4/status"
)

// The dashboard's view models: everything the templates show, formatted
// here, so the templates hold no logic beyond loops and conditions.

// pageView is the whole page.
type pageView struct {
	ReadOnly bool // no reload button; says "read-only" instead
	Filter   string
	HtmxURL  string
	CSSURL   string
	JSURL    string
	IconURL  string
	Overview overviewView
}

// overviewView is what the poll refreshes: every service, and the fleet
// (nil outside a fleet).
type overviewView struct {
	Fleet    *fleetPanel
	Updated  string
	Version  string // of the process that answers: a new one after an upgrade
	PID      int
	Services []serviceView
	Backends int
	Up       int
	Down     int
	Pending  int
	Draining int
}

type serviceView struct {
	Name          string
	Listen        string
	Algorithm     string
	Active        string
	Total         string
	Rejected      string
	RejectedTitle string
	Retries       string
	Summary       string
	Spark         template.HTML
	SparkSpan     string // "last 5m", or less until the history is full
	Backends      []backendView
	Discovery     []discoveryView
}

// discoveryView is one discovery source under a service's title.
type discoveryView struct {
	Source   string // "dns _pg._tcp.db" or "etcd members"
	Backends int
	Good     string // when the last good answer came, "" if none yet
	Errors   int64
	Error    string // the last error while the source is failing, else ""
	Failing  bool
}

type backendView struct {
	Service    string
	Name       string
	Address    string
	ShowAddr   bool   // the address differs from the name
	Key        string // service/backend, as the page's "open" parameter names it
	URL        string // /ui/services/{service}/backends/{backend}, escaped
	Backup     bool
	State      string // healthy | unhealthy | draining | pending
	Badge      string // UP, DOWN, PENDING, DRAINING, DRAINED
	BadgeClass string // up | warn | down | pending | drain
	BadgeTitle string
	Streak     string // where the checks stand between the thresholds: "0 of 3 fails → down"
	Health     string // the checks' verdict while draining, else ""
	Reason     string
	Circuit    string
	CircuitCls string
	Weight     int
	WeightNote string
	Active     string
	Total      string
	Failed     string
	ErrorRate  string
	BytesIn    string
	BytesOut   string
	Check      *checkView
	Since      string
	SinceTitle string
	Spark      template.HTML
	SparkSpan  string // labels the sparkline on a phone, where it has no column header
	Draining   bool
	ReadOnly   bool              // no actions, no weight editor
	Fleet      *backendFleetView // nil outside a fleet or when nothing to say
	Diverged   bool
	Eligible   bool
	Filter     string
	Open       bool
	Events     []eventView
}

type checkView struct {
	OK       bool
	Duration string
	Error    string
	Ago      string
	Time     string
}

type eventView struct {
	Time   string
	Ago    string
	From   string
	To     string
	Reason string
}

func (s *Server) overview(svcs []status.Service, vw viewer) overviewView {
	now := s.now()
	ov := overviewView{Fleet: s.fleetPanel(now), Updated: now.Format("15:04:05"), Services: make([]serviceView, 0, len(svcs))}
	ov.Version, ov.PID = s.info.Version, s.info.PID
	var p, sp points
	for i := range svcs {
		sv := &svcs[i]
		v := serviceView{
			Name:      sv.Name,
			Listen:    sv.Listen,
			Algorithm: strings.ReplaceAll(sv.Algorithm, "_", " "),
			Active:    humanCount(sv.ActiveConnections),
			Total:     humanCount(sv.TotalConnections),
			Rejected:  humanCount(sv.RejectedConnections),
			Retries:   humanCount(sv.Retries),
			Backends:  make([]backendView, 0, len(sv.Backends)),
		}
		for _, d := range sv.Discovery {
			dv := discoveryView{Source: d.Type + " " + d.Name, Backends: d.Backends, Errors: d.Errors}
			if d.Type == "etcd" {
				dv.Source = "etcd members"
			}
			if d.LastSuccess != nil {
				dv.Good = humanDuration(now.Sub(*d.LastSuccess)) + " ago"
			}
			if d.LastErrorTime != nil && (d.LastSuccess == nil || d.LastErrorTime.After(*d.LastSuccess)) {
				dv.Failing, dv.Error = true, d.LastError
			}
			v.Discovery = append(v.Discovery, dv)
		}
		var reasons []string
		for _, r := range sv.Rejected.Reasons() {
			if r.Count > 0 {
				reasons = append(reasons, strings.ReplaceAll(r.Reason, "_", " ")+" "+humanCount(r.Count))
			}
		}
		v.RejectedTitle = "no rejections"
		if len(reasons) > 0 {
			v.RejectedTitle = strings.Join(reasons, ", ")
		}
		// The service's sample count sets the x axis of all its charts.
		s.history.service(sv.Name, &sp)
		slots := len(sp.active)
		v.Spark = sparkline(&sp, s.every, slots)
		v.SparkSpan = sparkSpan(slots, s.every)
		var up, eligible, draining, down, pending int
		for j := range sv.Backends {
			b := &sv.Backends[j]
			v.Backends = append(v.Backends, s.backendView(sv.Name, b, vw, now, &p, slots))
			switch stateGroup(b.State) {
			case "up":
				up++
			case "draining":
				draining++
			case "pending":
				pending++
			default:
				down++
			}
			if b.Eligible {
				eligible++
			}
		}
		v.Summary = fmt.Sprintf("%d backend%s · %d eligible", len(sv.Backends), plural(len(sv.Backends)), eligible)
		if down > 0 {
			v.Summary += fmt.Sprintf(" · %d down", down)
		}
		if pending > 0 {
			v.Summary += fmt.Sprintf(" · %d pending", pending)
		}
		if draining > 0 {
			v.Summary += fmt.Sprintf(" · %d draining", draining)
		}
		ov.Services = append(ov.Services, v)
		ov.Backends += len(sv.Backends)
		ov.Up += up
		ov.Down += down
		ov.Pending += pending
		ov.Draining += draining
	}
	return ov
}

// stateGroup is what the totals count a backend as, and its filter term
// ("is:down"): up, down, pending or draining.
func stateGroup(state string) string {
	switch state {
	case "healthy":
		return "up"
	case "draining", "pending":
		return state
	}
	return "down"
}

// backendView is one backend's row; slots is its service's sample count,
// which its sparkline's x axis spans.
func (s *Server) backendView(svc string, b *status.Backend, vw viewer, now time.Time, p *points, slots int) backendView {
	key := svc + "/" + b.Name
	v := backendView{
		Service:  svc,
		Name:     b.Name,
		Address:  b.Address,
		ShowAddr: b.Address != b.Name,
		Key:      key,
		URL:      "/ui/services/" + url.PathEscape(svc) + "/backends/" + url.PathEscape(b.Name),
		Backup:   b.Backup,
		State:    b.State,
		Reason:   b.Reason,
		Circuit:  strings.ReplaceAll(b.Circuit, "_", "-"),
		Weight:   b.Weight,
		Active:   humanCount(b.ActiveConnections),
		Total:    humanCount(b.TotalConnections),
		Failed:   humanCount(b.FailedConnections),
		BytesIn:  humanBytes(b.BytesIn),
		BytesOut: humanBytes(b.BytesOut),
		Draining: b.State == "draining",
		ReadOnly: vw.readOnly,
		Fleet:    backendFleet(b),
		Diverged: b.Diverged != nil && *b.Diverged,
		Eligible: b.Eligible,
		Open:     vw.open[key],
	}
	if b.ErrorRate > 0 {
		v.ErrorRate = strconv.FormatFloat(b.ErrorRate*100, 'f', 0, 64) + "%"
	}
	v.Badge, v.Streak, v.BadgeClass, v.BadgeTitle = stateBadge(b)
	if v.Draining {
		h, _, _, _ := healthBadge(b)
		v.Health = "checks " + strings.ToLower(h)
	}
	switch b.Circuit {
	case "open":
		v.CircuitCls = "down"
	case "half_open":
		v.CircuitCls = "warn"
	default:
		v.CircuitCls = "muted"
	}
	var notes []string
	if b.ConfiguredWeight != b.Weight {
		notes = append(notes, "file "+strconv.Itoa(b.ConfiguredWeight))
	}
	if b.Weight > 0 && b.EffectiveWeight > 0 && b.EffectiveWeight < float64(b.Weight) {
		notes = append(notes, "ramping "+strconv.FormatFloat(b.EffectiveWeight/float64(b.Weight)*100, 'f', 0, 64)+"%")
	}
	v.WeightNote = strings.Join(notes, " · ")
	if lc := b.LastCheck; lc != nil {
		v.Check = &checkView{
			OK:       lc.OK,
			Duration: humanMillis(lc.DurationMS),
			Error:    lc.Error,
			Ago:      humanDuration(now.Sub(lc.Time)) + " ago",
			Time:     lc.Time.Format(time.RFC3339),
		}
	}
	if !b.LastChange.IsZero() {
		v.Since = humanDuration(now.Sub(b.LastChange))
		v.SinceTitle = "last state change " + b.LastChange.Format(time.RFC3339)
	}
	s.history.backend(svc, b.Name, p)
	v.Spark = sparkline(p, s.every, slots)
	v.SparkSpan = sparkSpan(slots, s.every)
	v.Filter = strings.ToLower(strings.Join([]string{svc, b.Name, b.Address, v.Badge, b.State, "is:" + stateGroup(b.State), v.Circuit, b.Reason}, " "))
	if ff := fleetFilter(b); ff != "" {
		v.Filter += " " + ff
	}
	if v.Open {
		v.Events = make([]eventView, 0, len(b.Events))
		for _, e := range b.Events {
			v.Events = append(v.Events, eventView{
				Time:   e.Time.Format("2006-01-02 15:04:05"),
				Ago:    humanDuration(now.Sub(e.Time)) + " ago",
				From:   e.From,
				To:     e.To,
				Reason: e.Reason,
			})
		}
	}
	return v
}

// stateBadge says the backend's state, and for a verdict where the checks
// stand between the thresholds, in words ("UP", "0 of 3 fails → down": no
// failed check yet of the three in a row that take it down; "DOWN", "1 of 2
// passes → up": one passing check of the two that bring it back).
func stateBadge(b *status.Backend) (text, streak, class, title string) {
	if b.State == "draining" {
		if b.Drained {
			return "DRAINED", "", "drain", "draining, no connection left: safe to remove"
		}
		return "DRAINING", "", "drain", "draining: takes no new connection; established ones continue"
	}
	return healthBadge(b)
}

func healthBadge(b *status.Backend) (text, streak, class, title string) {
	switch b.Health {
	case "pending":
		return "PENDING", "", "pending", "added while running: takes no connection until its first health check decides"
	case "unhealthy":
		return "DOWN", fmt.Sprintf("%d of %d passes → up", b.ConsecutiveSuccesses, b.HealthyThreshold), "down",
			fmt.Sprintf("unhealthy: %d of the %d consecutive passing checks that bring it back",
				b.ConsecutiveSuccesses, b.HealthyThreshold)
	}
	class = "up"
	if b.ConsecutiveFailures > 0 {
		class = "warn"
	}
	return "UP", fmt.Sprintf("%d of %d fails → down", b.ConsecutiveFailures, b.UnhealthyThreshold), class,
		fmt.Sprintf("healthy: %d of the %d consecutive failed checks that make it unhealthy",
			b.ConsecutiveFailures, b.UnhealthyThreshold)
}
