package admin

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/status"
)

const testToken = "s3cret-token"

func basic(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuthAccepts(t *testing.T) {
	f := newFixture(t, testToken)
	for _, tc := range []struct{ name, header string }{
		{"bearer", "Authorization: Bearer " + testToken},
		{"bearer lower-case scheme", "Authorization: bearer " + testToken},
		{"basic any user", basic("alice", testToken)},
		{"basic empty user", basic("", testToken)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantJSON[[]status.Service](t, f.request("GET", "/api/v1/services", "", tc.header), http.StatusOK)
		})
	}
}

func TestAuthRejects(t *testing.T) {
	f := newFixture(t, testToken)
	for _, tc := range []struct{ name, method, path, header, want string }{
		{"missing", "GET", "/api/v1/services", "", "missing credentials"},
		{"wrong bearer", "GET", "/api/v1/services", "Authorization: Bearer nope", "wrong token"},
		{"token prefix", "GET", "/api/v1/services", "Authorization: Bearer s3cret", "wrong token"},
		{"token as basic user", "GET", "/api/v1/services", basic(testToken, "x"), "wrong token"},
		{"other scheme", "GET", "/api/v1/services", "Authorization: Token " + testToken, "missing credentials"},
		{"metrics", "GET", "/metrics", "", "missing credentials"},
		{"dashboard", "GET", "/", "", "missing credentials"},
		{"fragment", "GET", "/ui/services", "", "missing credentials"},
		{"static", "GET", "/static/dashboard.css", "", "missing credentials"},
		{"drain", "POST", "/api/v1/services/web/backends/a/drain", "Authorization: Bearer nope", "wrong token"},
		{"unknown route", "GET", "/nope", "", "missing credentials"},
		{"wrong method", "DELETE", "/api/v1/services", "", "missing credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.request(tc.method, tc.path, "", tc.header)
			msg := wantError(t, rec, http.StatusUnauthorized)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error = %q, want %q", msg, tc.want)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="balance-l4"`) {
				t.Fatalf("WWW-Authenticate = %q", got)
			}
			if strings.Contains(rec.Body.String(), testToken) {
				t.Fatal("response contains the token")
			}
		})
	}
	if calls := f.ctrl.Calls(); len(calls) != 0 {
		t.Fatalf("unauthenticated calls reached the controller: %+v", calls)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "wrong token") {
		t.Fatalf("wrong tokens are not logged: %s", logs)
	}
	if strings.Contains(logs, "s3cret") || strings.Contains(logs, "nope") {
		t.Fatalf("log contains a secret: %s", logs)
	}
}

func TestHealthzNeedsNoToken(t *testing.T) {
	f := newFixture(t, testToken)
	if rec := f.request("GET", "/healthz", ""); rec.Code != http.StatusOK {
		t.Fatalf("GET /healthz without token = %d", rec.Code)
	}
}

func TestAuthedMetricsAndDashboard(t *testing.T) {
	f := newFixture(t, testToken)
	for _, path := range []string{"/metrics", "/", "/ui/services", "/static/htmx.min.js"} {
		if rec := f.request("GET", path, "", basic("ops", testToken)); rec.Code != http.StatusOK {
			t.Errorf("GET %s with token = %d", path, rec.Code)
		}
	}
}

func TestCrossSite(t *testing.T) {
	f := newFixture(t, testToken)
	auth := "Authorization: Bearer " + testToken
	const drain = "/api/v1/services/web/backends/a/drain"
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers []string
		code    int
	}{
		{"fetch cross-site", "POST", drain, []string{"Sec-Fetch-Site: cross-site"}, http.StatusForbidden},
		{"fetch same-site", "POST", drain, []string{"Sec-Fetch-Site: same-site"}, http.StatusForbidden},
		{"origin other host", "POST", drain, []string{"Origin: https://evil.example"}, http.StatusForbidden},
		{"origin other port", "POST", drain, []string{"Origin: http://example.com:81"}, http.StatusForbidden},
		{"origin null", "POST", drain, []string{"Origin: null"}, http.StatusForbidden},
		{"weight cross-site", "PUT", "/api/v1/services/web/backends/a/weight", []string{"Sec-Fetch-Site: cross-site"}, http.StatusForbidden},
		{"ui drain cross-site", "POST", "/ui/services/web/backends/a/drain", []string{"Sec-Fetch-Site: cross-site"}, http.StatusForbidden},
		{"reload cross-site", "POST", "/api/v1/reload", []string{"Origin: http://attacker.test"}, http.StatusForbidden},
		{"fetch same-origin", "POST", drain, []string{"Sec-Fetch-Site: same-origin", "Origin: http://example.com"}, http.StatusOK},
		{"fetch none", "POST", drain, []string{"Sec-Fetch-Site: none"}, http.StatusOK},
		{"origin same host", "POST", drain, []string{"Origin: http://example.com"}, http.StatusOK},
		{"no browser headers", "POST", drain, nil, http.StatusOK},
		{"cross-site GET reads", "GET", "/api/v1/services", []string{"Sec-Fetch-Site: cross-site"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := append([]string{auth}, tc.headers...)
			body := ""
			if tc.method == "PUT" {
				body = `{"weight": 1}`
			}
			rec := f.request(tc.method, tc.path, body, headers...)
			if tc.code == http.StatusForbidden {
				msg := wantError(t, rec, http.StatusForbidden)
				if !strings.Contains(msg, "cross-site request refused") {
					t.Fatalf("error = %q", msg)
				}
				return
			}
			if rec.Code != tc.code {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
		})
	}
	for _, c := range f.ctrl.Calls() {
		if c.Method != "Drain" {
			t.Fatalf("a refused request reached the controller: %+v", c)
		}
	}
	if n := len(f.ctrl.Calls()); n != 4 {
		t.Fatalf("%d drains reached the controller, want the 4 allowed ones", n)
	}
}

func TestNoTokenConfigured(t *testing.T) {
	f := newFixture(t, "")
	wantJSON[[]status.Service](t, f.request("GET", "/api/v1/services", ""), http.StatusOK)
	// Cross-site protection holds without a token too.
	wantError(t, f.request("POST", "/api/v1/services/web/backends/a/drain", "", "Sec-Fetch-Site: cross-site"), http.StatusForbidden)
}

func TestBasicUserNamedInActions(t *testing.T) {
	f := newFixture(t, testToken)
	wantJSON[status.Backend](t, f.request("POST", "/api/v1/services/web/backends/a/drain", "", basic("alice", testToken)), http.StatusOK)
	if calls := f.ctrl.Calls(); len(calls) != 1 || calls[0].By != "api alice@192.0.2.7:40000 (token)" {
		t.Fatalf("calls = %+v", calls)
	}
}
