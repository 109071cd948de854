package limit

import (
	"net/http"
	"time"
)

// DefaultBodyTimeout is how long a client may take to send a request body
// (30 seconds).
const DefaultBodyTimeout = 30 * time.Second

// BodyDeadline wraps next so that a request's body must arrive within d of
// the handler starting, or its reads fail with a timeout (the handler then
// answers 400, as for any unreadable body). It guards against clients that
// send headers and then trickle the body, holding a connection and a
// goroutine each (slowloris); http.Server's ReadHeaderTimeout covers only
// the headers, and a server-wide ReadTimeout would also cut the long-lived
// GET streams (Server-Sent Events, WebSockets). Only requests that may have
// a body are affected: GET, HEAD and OPTIONS pass untouched. The deadline
// is per request; net/http resets it for the next request on the
// connection. d <= 0 returns next.
func BodyDeadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			// ErrNotSupported only from a writer that is not net/http's
			// (tests, some middleware); the body is then simply unbounded.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}
