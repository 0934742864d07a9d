package admin

import (
	"net/http"
	"time"
)

// timeoutBody is what a client gets when its request outlives the timeout.
const timeoutBody = `{"error":"request timed out"}` + "\n"

// withTimeout bounds every request with http.TimeoutHandler: past d the client
// gets a JSON 503 and its connection is released, whatever the handler (a slow
// reload, say) still does. The JSON content type is set up front; a handler
// that finishes in time replaces it with its own.
//
// Not Echo's middleware: its Timeout is deprecated for racing on the
// response writer, and its ContextTimeout only cancels the request's context,
// which Controller calls (a reload) do not take, so the client would wait on.
func withTimeout(h http.Handler, d time.Duration) http.Handler {
	th := http.TimeoutHandler(h, d, timeoutBody)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		th.ServeHTTP(w, r)
	})
}
