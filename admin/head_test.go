package admin

import (
	"net/http"
	"testing"
)

// TestHeadOnReads: every read answers HEAD as it answers GET, without a
// body, so a monitor may probe with HEAD /healthz.
func TestHeadOnReads(t *testing.T) {
	f := newFixture(t, "")
	for _, path := range []string{"/healthz", "/metrics", "/api/v1/services", "/api/v1/services/web",
		"/api/v1/services/web/backends/a", "/api/v1/info", "/"} {
		get := f.request(http.MethodGet, path, "")
		head := f.request(http.MethodHead, path, "")
		if head.Code != get.Code || get.Code != http.StatusOK {
			t.Errorf("%s: HEAD %d, GET %d, want both 200", path, head.Code, get.Code)
		}
	}
	if rec := f.request(http.MethodHead, "/api/v1/services/nope", ""); rec.Code != http.StatusNotFound {
		t.Errorf("HEAD of an unknown service: %d, want 404", rec.Code)
	}
	if rec := f.request(http.MethodHead, "/api/v1/reload", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("HEAD /api/v1/reload: %d, want 405", rec.Code)
	}
}
