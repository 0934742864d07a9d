package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestParseOperator(t *testing.T) {
	good := []struct {
		in   string
		want Operator
	}{
		{`{"drain": true, "weight": null, "by": "ops", "at": "2026-12-07T10:00:00Z"}`,
			Operator{Drain: true, By: "ops", At: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}},
		{`{"drain": false, "weight": 7}`, Operator{Weight: new(7)}},
		{`{"drain": false, "weight": 0}`, Operator{Weight: new(0)}},
		{`{"drain": true}`, Operator{Drain: true}},
		{` {"drain":true,"at":""} `, Operator{Drain: true}},
	}
	for _, c := range good {
		got, err := ParseOperator([]byte(c.in))
		if err != nil {
			t.Errorf("ParseOperator(%s): %v", c.in, err)
			continue
		}
		if !got.Same(c.want) || got.By != c.want.By || !got.At.Equal(c.want.At) {
			t.Errorf("ParseOperator(%s) = %+v, want %+v", c.in, got, c.want)
		}
	}
	bad := []struct{ in, says string }{
		{`not json`, "not a JSON object"},
		{`{"weight": 3}`, `"drain"`},
		{`{"drain": "yes"}`, "not a JSON object"},
		{`{"drain": true, "weight": 257}`, "outside 0..256"},
		{`{"drain": true, "weight": -1}`, "outside 0..256"},
		{`{"drain": true, "weight": 1.5}`, "integer"},
		{`{"drain": true, "colour": "red"}`, "colour"},
		{`{"drain": true, "at": "yesterday"}`, "RFC 3339"},
		{`{"drain": true} {"drain": false}`, "trailing"},
		{`[]`, "not a JSON object"},
		{``, "not a JSON object"},
	}
	for _, c := range bad {
		_, err := ParseOperator([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseOperator(%q) = %v, want an error saying %q", c.in, err, c.says)
		}
	}
}

func TestOperatorEncodeRoundTrip(t *testing.T) {
	op := Operator{Drain: true, Weight: new(12), By: "api on a", At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	got, err := ParseOperator([]byte(op.encode()))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Same(op) || got.By != op.By || !got.At.Equal(op.At) {
		t.Fatalf("round trip = %+v, want %+v", got, op)
	}
}

func TestParseOperatorKey(t *testing.T) {
	l := newLayout("prod")
	k, err := l.parseOperatorKey("/balance-l4/prod/operator/db/pg-1")
	if err != nil || k != (Key{"db", "pg-1"}) {
		t.Fatalf("parse = %v, %v", k, err)
	}
	if got := l.operatorKey(k); got != "/balance-l4/prod/operator/db/pg-1" {
		t.Fatalf("operatorKey = %q", got)
	}
	for _, bad := range []string{"/balance-l4/prod/operator/db", "/balance-l4/prod/operator/db/", "/balance-l4/prod/operator//b",
		"/balance-l4/prod/operator/db/a/b", "/balance-l4/other/operator/db/a"} {
		if _, err := l.parseOperatorKey(bad); err == nil {
			t.Errorf("parseOperatorKey(%q) accepted", bad)
		}
	}
}
