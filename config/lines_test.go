package config

import (
	"strings"
	"testing"
)

func TestKeyLines(t *testing.T) {
	src := strings.Join([]string{
		`# [[services]] in a comment is not a header`,  // 1
		`shutdown_timeout = "1s" # trailing [comment]`, // 2
		`[[services]]`,                           // 3
		`name = """`,                             // 4
		`[[services]] inside a string`,           // 5
		`"""`,                                    // 6
		`note = '''it''s'''`,                     // 7
		`timeouts.connect = "1s"`,                // 8
		`"quoted key" = 1`,                       // 9
		`  [[ services.backends ]]`,              // 10
		`  address = "a:1"`,                      // 11
		`[[services.backends]]`,                  // 12
		`address = "b:1"`,                        // 13
		`[services.health_check]`,                // 14
		`expected_status = [`,                    // 15
		`  200, # ok`,                            // 16
		`  204,`,                                 // 17
		`]`,                                      // 18
		`[[services]]`,                           // 19
		`name = 'two'`,                           // 20
		`backends = [ { address = "c:1" },`,      // 21
		`  { address = "d:1", weight = { x = 1,`, // 22
		`      y = 2 } } ]`,                      // 23
		`[services.resilience.retry]`,            // 24
		`jitter = 0.1`,                           // 25
	}, "\r\n")
	lines := keyLines(src)
	want := map[string]int{
		"shutdown_timeout":                            2,
		"services":                                    3,
		"services[0]":                                 3,
		"services[0].name":                            4,
		"services[0].note":                            7,
		"services[0].timeouts":                        8,
		"services[0].timeouts.connect":                8,
		`services[0]."quoted key"`:                    9,
		"services[0].backends":                        10,
		"services[0].backends[0]":                     10,
		"services[0].backends[0].address":             11,
		"services[0].backends[1]":                     12,
		"services[0].backends[1].address":             13,
		"services[0].health_check":                    14,
		"services[0].health_check.expected_status":    15,
		"services[0].health_check.expected_status[0]": 16,
		"services[0].health_check.expected_status[1]": 17,
		"services[1]":                                 19,
		"services[1].name":                            20,
		"services[1].backends":                        21,
		"services[1].backends[0]":                     21,
		"services[1].backends[0].address":             21,
		"services[1].backends[1]":                     22,
		"services[1].backends[1].weight.x":            22,
		"services[1].backends[1].weight.y":            23,
		"services[1].resilience.retry":                24,
		"services[1].resilience.retry.jitter":         25,
	}
	for path, line := range want {
		if got, ok := lines[path]; !ok || got != line {
			t.Errorf("line of %s = %d (found %v), want %d", path, got, ok, line)
		}
	}
	for path := range lines {
		if strings.Contains(path, "inside") || strings.Contains(path, "comment") {
			t.Errorf("recorded %q from a string or comment", path)
		}
	}
}

func TestErrorLinesInInlineForms(t *testing.T) {
	checkErrors(t, doc(
		`services = [`,
		`  { name = "a", listen = "127.0.0.1:7000", backends = [`,
		`    { address = "127.0.0.1:1" },`,
		`    { address = "127.0.0.1:2", weight = 999 },`,
		`  ] },`,
		`  { name = "b", listen = "127.0.0.1:7001",`,
		`    timeouts = { connect = "x" } },`,
		`]`,
	), []wantErr{
		{"services[0].backends[1].weight", 4, "got 999"},
		{"services[1].timeouts.connect", 7, `got "x"`},
	})
}

func TestKeyLinesEndsOnGarbage(t *testing.T) {
	for _, src := range []string{
		"", "[", "[[", "a =", `a = "`, `a = """`, "a = [1, {", "= = =", "\"\\", "a.'b", "\xef\xbb\xbf[x]\ny=1",
	} {
		_ = keyLines(src) // must return, not panic
	}
	if got := keyLines("\xef\xbb\xbf[x]\ny = 1")["x.y"]; got != 2 {
		t.Errorf("after a byte-order mark, x.y on line %d, want 2", got)
	}
}
