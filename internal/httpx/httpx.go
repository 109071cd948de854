// Package httpx holds the JSON conventions every native HTTP route of vigil
// shares: one error body, one list shape, one mapping from vigil's sentinel
// errors to HTTP statuses.
package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/vigil-monitor/vigil"
)

// ErrorBody is the JSON shape of every error answer: {"error": "…"} plus,
// for a validation failure, the offending field or query parameter
// ("next_in", "[3].service", "cursor").
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Page is the JSON shape of every list: the items in order and, unless this
// is the last page, an opaque cursor to pass back as ?cursor= for the next.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// WriteJSON writes v as JSON with status code and Cache-Control: no-store.
// A value that cannot be marshalled becomes a 500 error body.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// Status maps err to its HTTP status: *vigil.FieldError and vigil.ErrInvalid
// 400, ErrNotFound 404, ErrTooLarge 413, ErrUnsupportedMedia 415,
// ErrUnavailable 503, anything else 500.
func Status(err error) int {
	switch {
	case errors.Is(err, vigil.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, vigil.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, vigil.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, vigil.ErrUnsupportedMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, vigil.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteError writes err as an ErrorBody with the status Status gives. Client
// errors (4xx) show their message and field; a 503 says to retry and sets
// Retry-After; a 500 says "internal error". Server-side failures are logged
// on log with the request's method and path, never shown in detail.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := Status(err)
	body := ErrorBody{Error: err.Error()}
	var fe *vigil.FieldError
	if errors.As(err, &fe) {
		body = ErrorBody{Error: fe.Error(), Field: fe.Field}
	}
	switch {
	case code == http.StatusServiceUnavailable:
		log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		body = ErrorBody{Error: "jetstream unavailable, retry later"}
	case code >= 500:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body = ErrorBody{Error: "internal error"}
	}
	WriteJSON(w, code, body)
}
