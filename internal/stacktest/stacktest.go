// Package stacktest runs vigil's real roles on an embedded JetStream for
// tests: of HTTP clients (the client package, the vigil CLI) and of code
// built on the roles (the legacy protocols).
package stacktest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// Stack is a running vigil: the ingest and api roles (and, with
// WithWatchdog, a watchdog) on one embedded JetStream, their routes on
// Router as `vigil all` mounts them, served at URL.
type Stack struct {
	URL    string
	Router chi.Router
	Assets *bus.Assets
	Ingest *ingest.Role
	API    *api.Role
}

// Option adds to a Stack.
type Option func(*options)

type options struct{ watchdog bool }

// WithWatchdog also runs a watchdog, so silent services go down.
func WithWatchdog() Option { return func(o *options) { o.watchdog = true } }

// Start runs the stack and returns once the api's views have caught up
// (Ready). Everything stops when the test, benchmark or fuzz run ends.
func Start(t testing.TB, opts ...Option) *Stack {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	s := bustest.New(t)
	a := s.Provision(t)
	deps := bus.Deps{Conn: s.Conn(t), Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry()}
	in, err := ingest.New(ingest.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := api.New(api.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	in.Routes(rt)
	rd.Routes(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	Run(t, rd.Run)
	if o.watchdog {
		wd, err := watchdog.New(watchdog.DefaultConfig(), deps)
		if err != nil {
			t.Fatal(err)
		}
		Run(t, wd.Run)
	}
	Ready(t, rt, nil)
	return &Stack{URL: srv.URL, Router: rt, Assets: a, Ingest: in, API: rd}
}

// Ready waits until the api role routed by h answers 200 on every list it
// serves (services, events, alerts, hosts): until then it answers 503
// while its views catch up. header goes with each request (a token).
func Ready(tb testing.TB, h http.Handler, header http.Header) {
	tb.Helper()
	bustest.Eventually(tb, func() error {
		for _, path := range []string{"/v1/services", "/v1/events", "/v1/alerts", "/v1/hosts"} {
			req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, nil)
			for k, v := range header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				return fmt.Errorf("GET %s = %d %s", path, rec.Code, rec.Body)
			}
		}
		return nil
	})
}

// Serve runs the ingest and api roles and returns the base URL; see Start.
func Serve(t testing.TB) string { return Start(t).URL }

// Run runs fn (a role's or a loop's Run) until the test ends, then cancels
// it, waits for it and reports its error.
func Run(t testing.TB, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}
