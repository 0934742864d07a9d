package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary methods, paths and bodies to the API: it must never
// panic or answer 5xx, and every error must be {"error": "..."} JSON.
func FuzzAPI(f *testing.F) {
	for _, seed := range []struct {
		method, path, body string
	}{
		{"GET", "/api/v1/services", ""},
		{"GET", "/api/v1/services/web/backends/a", ""},
		{"POST", "/api/v1/services/web/backends/a/drain", ""},
		{"POST", "/api/v1/services/web/backends/a/undrain", "{}"},
		{"POST", "/api/v1/services/web/backends/c/disconnect", ""},
		{"PUT", "/api/v1/services/web/backends/a/weight", `{"weight": 5}`},
		{"PUT", "/api/v1/services/web/backends/a/weight", `{"weight": 1e309}`},
		{"PUT", "/api/v1/services/web/backends/a/weight", `{"weight": "5", "x": [}`},
		{"PUT", "/api/v1/services/%2e%2e/backends/%2F/weight", `{"weight": -1}`},
		{"DELETE", "/api/v1/services/web", ""},
		{"POST", "/api/v1/reload", "garbage"},
		{"GET", "/api/v1/services/%ff%fe/backends/\u00e9", ""},
		{"PATCH", "/ui/services/web/backends/a/weight", "weight=7"},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	fx := newFixture(f, "")
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !validMethod(method) {
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" || !strings.HasPrefix(path, "/api/") {
			return
		}
		req := httptest.NewRequest(method, "http://127.0.0.1"+u.RequestURI(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != http.MethodHead { // a HEAD answer has no body
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" || len(e) != 1 {
				t.Fatalf("%s %s: status %d with body %q, want {\"error\": ...}", method, path, rec.Code, rec.Body)
			}
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return true
	}
	return false
}
