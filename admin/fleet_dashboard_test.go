package admin

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/balancel4/balance-l4/status"
)

func TestFleetDashboard(t *testing.T) {
	f := newFleetFixture(t, "")
	body := f.request("GET", "/", "").Body.String()
	for _, want := range []string{
		`<section id="fleet" class="fleet" data-connected="true">`,
		`<code class="fleet-name">prod</code>`,
		`3 live instances · 1 disagrees with this one · last full sync 3s ago`,
		`data-instance="lb-a" data-self="true"`, `this instance`,
		`<a href="http://127.0.0.2:9090" rel="noreferrer">`,
		`<tr class="instance disagree" data-instance="lb-c">`,
		`>0123456789ab</code>`, `>fedcba987654</code>`,
		`>config differs</span>`, `>behind</span>`, `up to etcd revision 40, and this instance an operator change of revision 42`,
		`draining on 2/3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `data-instance="lb-b" data-self`) || strings.Contains(body, `instance disagree" data-instance="lb-b"`) {
		t.Error("lb-b is marked although it agrees")
	}
	if strings.Contains(body, "fleet-banner") || strings.Contains(body, "diverged (local)") {
		t.Error("banner or diverged badge while connected and in step")
	}

	// Unreachable: the banner with how long and the last error.
	f.disconnect(t, 72*time.Second)
	body = f.request("GET", "/ui/services", "").Body.String()
	for _, want := range []string{
		`Fleet store unreachable for 1m 12s — serving with the last applied state; changes need ?scope=local`,
		storeDown, `<span class="badge down">unreachable</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if i, j := strings.Index(body, "fleet-banner"), strings.Index(body, `class="totals"`); i < 0 || i > j {
		t.Error("the banner is not at the top")
	}

	// A local change: the row says it diverged; a fleet-wide one in step again.
	rec := f.request("POST", "/ui/services/web/backends/a/drain?scope=local", "")
	if !strings.Contains(rec.Body.String(), `title="changed with scope=local on this instance; the next fleet-wide change replaces it">diverged (local)</span>`) {
		t.Fatalf("local drain row: %s", rec.Body)
	}
	if err := f.ctrl.UpdateFleet(func(fl *status.Fleet) { fl.Connected, fl.DisconnectedSince = true, nil }); err != nil {
		t.Fatal(err)
	}
	// lb-c is behind, so it does not apply the drain.
	rec = f.request("POST", "/ui/services/web/backends/a/drain", "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "diverged") || !strings.Contains(rec.Body.String(), "draining on 2/3") {
		t.Fatalf("fleet-wide drain row = %d %s", rec.Code, rec.Body)
	}
	// Once draining everywhere with no connection left: fleet drained.
	if err := f.ctrl.Update("web", "a", "", func(b *status.Backend) { b.ActiveConnections = 0 }); err != nil {
		t.Fatal(err)
	}
	if err := f.ctrl.UpdateFleet(func(fl *status.Fleet) {
		for i := range fl.Instances {
			for j := range fl.Instances[i].Backends {
				fl.Instances[i].Backends[j].ActiveConnections = 0
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if body := f.request("GET", "/ui/services", "").Body.String(); strings.Contains(body, "fleet drained") || !strings.Contains(body, "draining on 2/3") {
		t.Fatal("web/a should be draining on 2/3 with lb-c behind")
	}
	if err := f.ctrl.UpdateFleet(func(fl *status.Fleet) {
		fl.Instances[2].Backends[0].State = "draining"
		fl.Instances[2].AppliedRevision = fl.OperatorRevision
	}); err != nil {
		t.Fatal(err)
	}
	body = f.request("GET", "/ui/services", "").Body.String()
	if !strings.Contains(body, "draining on 3/3") || !strings.Contains(body, ">fleet drained</small>") {
		t.Fatal("web/a not shown fleet drained")
	}
	if strings.Contains(body, ">behind</span>") {
		t.Fatal("lb-c still behind after catching up")
	}
}

func TestFleetDisagreement(t *testing.T) {
	self := &status.Instance{ID: "a", ConfigDigest: "d1", AppliedRevision: 12}
	for _, tc := range []struct {
		in    status.Instance
		opRev int64
		want  []string
	}{
		{status.Instance{ConfigDigest: "d1", AppliedRevision: 10}, 10, nil},
		{status.Instance{ConfigDigest: "d1", AppliedRevision: 11}, 10, nil}, // applied revisions differ: no matter
		{status.Instance{ConfigDigest: "d1", AppliedRevision: 7}, 0, nil},   // no operator change yet
		{status.Instance{ConfigDigest: "d2", AppliedRevision: 10}, 10, []string{"config differs"}},
		{status.Instance{ConfigDigest: "d1", AppliedRevision: 9}, 10, []string{"behind"}},
		{status.Instance{ConfigDigest: "", AppliedRevision: 3}, 10, []string{"config differs", "behind"}},
	} {
		var got []string
		for _, m := range disagreement(&tc.in, self, tc.opRev) {
			got = append(got, m.Text)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%+v at operator revision %d: %v, want %v", tc.in, tc.opRev, got, tc.want)
		}
	}
	// Without this instance in the registry there is no digest to compare.
	if m := disagreement(&status.Instance{ConfigDigest: "x", AppliedRevision: 10}, nil, 10); len(m) != 0 {
		t.Errorf("marks without self: %v", m)
	}
	if got := shortDigest(digestA); got != "0123456789ab" {
		t.Errorf("shortDigest = %q", got)
	}
	if got := shortDigest("abc"); got != "abc" {
		t.Errorf("shortDigest = %q", got)
	}
}

// Outside a fleet the page has no trace of it.
func TestDashboardOutsideAFleet(t *testing.T) {
	f := newFixture(t, "")
	body := f.request("GET", "/", "").Body.String()
	for _, absent := range []string{`id="fleet"`, "fleet-banner", "draining on", "fleet drained", "diverged"} {
		if strings.Contains(body, absent) {
			t.Errorf("page has %q outside a fleet", absent)
		}
	}
}
