package soak

import (
	"net/http"
	"strings"
)

// tenMiB is the oversized body of hostile requests; the admin server caps
// bodies far below it.
var tenMiB = []byte(strings.Repeat("x", 10<<20))

// hostileRequests are requests an attacker or a broken script sends. Each
// must get a 4xx (the exact one where SPEC says which), never a 5xx, never a
// hang. service and backend name a real backend, so only the hostile part is
// wrong.
func hostileRequests(service, backend string) []Request {
	b := "/api/v1/services/" + service + "/backends/" + backend
	long := strings.Repeat("n", 10_000)
	const (
		s400 = http.StatusBadRequest
		s401 = http.StatusUnauthorized
		s403 = http.StatusForbidden
		s404 = http.StatusNotFound
		s405 = http.StatusMethodNotAllowed
		s413 = http.StatusRequestEntityTooLarge
		s431 = http.StatusRequestHeaderFieldsTooLarge
	)
	return []Request{
		// Garbage JSON and bad weights.
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{"weight":`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{"weight": "heavy"}`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{"weight": 1000}`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{"weight": -1}`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{"weight": 1, "colour": "blue"}`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{"weight": 1} trailing`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte("\x00\xff\xfe garbage"), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`[]`), Want: []int{s400}},
		{Method: http.MethodPut, Path: b + "/weight", Body: []byte(`{}`), Want: []int{s400}},
		// 10 MiB bodies.
		{Method: http.MethodPut, Path: b + "/weight", Body: tenMiB, Want: []int{s413}},
		{Method: http.MethodPost, Path: b + "/drain", Body: tenMiB, Want: []int{s413}},
		{Method: http.MethodPost, Path: "/api/v1/reload", Body: tenMiB, Want: []int{s413}},
		// Unknown paths.
		{Method: http.MethodGet, Path: "/api/v1/nope", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v2/services", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/" + service + "/backends/" + backend + "/extra", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/nope", Want: []int{s404}},
		{Method: http.MethodPost, Path: "/api/v1/services/" + service + "/backends/nope/drain", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/../../etc/passwd", Want: []int{s404}},
		// Wrong methods.
		{Method: http.MethodDelete, Path: "/api/v1/services", Want: []int{s405}},
		{Method: http.MethodGet, Path: b + "/drain", Want: []int{s405}},
		{Method: http.MethodPost, Path: b + "/weight", Body: []byte(`{"weight": 1}`), Want: []int{s405}},
		{Method: http.MethodPatch, Path: "/api/v1/reload", Want: []int{s405}},
		{Method: http.MethodPut, Path: "/healthz", Want: []int{s405}},
		// Odd names: an escaped slash, unicode, NUL, bad UTF-8, very long.
		{Method: http.MethodPost, Path: "/api/v1/services/" + service + "%2F..%2Fx/backends/" + backend + "/drain", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/" + service + "/backends/" + backend + "%2F..", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/%E2%9C%93%F0%9F%92%A5", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/a%00b", Want: []int{s400, s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/%FF%FE", Want: []int{s400, s404}},
		{Method: http.MethodPost, Path: "/api/v1/services/" + long + "/backends/" + long + "/drain", Want: []int{s404}},
		{Method: http.MethodGet, Path: "/api/v1/services/" + strings.Repeat("%E2%9C%93", 30_000), Want: []int{s404, s431}},
		{Method: http.MethodGet, Path: "/api/v1/services/" + strings.Repeat("x", 100_000), Want: []int{s431}},
		// Auth and cross-site.
		{Method: http.MethodGet, Path: "/api/v1/services", Header: map[string]string{"Authorization": "Bearer wrong"}, Want: []int{s401}},
		{Method: http.MethodPost, Path: b + "/drain", Header: map[string]string{"Authorization": ""}, Want: []int{s401}},
		{Method: http.MethodPost, Path: b + "/drain", Header: map[string]string{"Origin": "http://evil.example"}, Want: []int{s403}},
		{Method: http.MethodPost, Path: b + "/disconnect", Header: map[string]string{"Sec-Fetch-Site": "cross-site"}, Want: []int{s403}},
	}
}
