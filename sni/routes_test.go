package sni

import "testing"

func TestPattern(t *testing.T) {
	good := map[string]string{
		"db.example.com":     "db.example.com",
		"DB.Example.COM":     "db.example.com",
		"*.apps.example.com": "*.apps.example.com",
		"*.Example.com":      "*.example.com",
		"localhost":          "localhost",
		"_srv.x-y.test":      "_srv.x-y.test",
	}
	for in, want := range good {
		if got, err := Pattern(in); err != nil || got != want {
			t.Errorf("Pattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "*", "*.", "**.example.com", "a.*.example.com", "*example.com", "db.*",
		"example.com.", "a..b", ".example.com", "a b.com", "ex\x00ample.com", "é.example.com",
		string(make([]byte, 64)) + ".com"} {
		if got, err := Pattern(in); err == nil {
			t.Errorf("Pattern(%q) = %q, want an error", in, got)
		}
	}
}

// TestRoutesMatch is SPEC §9's rule as a table: the exact name, else the
// longest matching wildcard, case-insensitively; a wildcard does not match
// its own suffix.
func TestRoutesMatch(t *testing.T) {
	var r Routes[string]
	for p, v := range map[string]string{
		"db.example.com":          "db",
		"*.example.com":           "wild",
		"*.apps.example.com":      "apps",
		"exact.apps.example.com":  "exact",
		"*.deep.apps.example.com": "deep",
	} {
		if err := r.Add(p, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add("*.example.com", "again"); err == nil {
		t.Fatal("a pattern routed twice was accepted")
	}
	tests := map[string]string{
		"db.example.com":            "db",
		"DB.EXAMPLE.COM":            "db",
		"db.example.com.":           "db",
		"www.example.com":           "wild",
		"a.b.c.example.com":         "wild",
		"x.apps.example.com":        "apps",
		"X.Apps.Example.Com":        "apps",
		"apps.example.com":          "wild", // not *.apps.example.com itself
		"exact.apps.example.com":    "exact",
		"y.x.apps.example.com":      "apps",
		"z.deep.apps.example.com":   "deep",
		"deep.apps.example.com":     "apps",
		"example.com":               "",
		"example.org":               "",
		"notexample.com":            "",
		"db.example.com.evil.test":  "",
		"":                          "",
		".":                         "",
		"com":                       "",
		"apps.example.com.example.": "",
	}
	for name, want := range tests {
		got, ok := r.Match(name)
		if ok != (want != "") || got != want {
			t.Errorf("Match(%q) = %q, %t; want %q", name, got, ok, want)
		}
	}
	var empty Routes[int]
	if _, ok := empty.Match("a.example.com"); ok {
		t.Fatal("an empty Routes matched")
	}
}

func TestRoutesMatchDoesNotAllocate(t *testing.T) {
	var r Routes[int]
	_ = r.Add("*.example.com", 1)
	_ = r.Add("db.example.com", 2)
	if n := testing.AllocsPerRun(100, func() {
		if v, _ := r.Match("a.b.example.com"); v != 1 {
			panic("no match")
		}
	}); n != 0 {
		t.Fatalf("Match allocates %v times for a lower-case name", n)
	}
}
