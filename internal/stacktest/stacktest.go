// Package stacktest serves vigil's real ingest and api roles for tests of
// their HTTP clients (the client package, the vigil CLI).
package stacktest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
)

// Serve runs the ingest and api roles on an embedded JetStream behind one
// router, as `vigil all` mounts them, and returns the base URL once
// GET /v1/services answers 200. Everything stops when the test ends.
func Serve(t *testing.T) string {
	t.Helper()
	s := bustest.New(t)
	a := s.Provision(t)
	reg := prometheus.NewRegistry()
	log := bustest.Logger(t)
	in, err := ingest.New(ingest.DefaultConfig(), ingest.Deps{Conn: s.Conn(t), Assets: a, Log: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := api.New(api.DefaultConfig(), api.Deps{Conn: s.Conn(t), Assets: a, Log: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	in.Routes(rt)
	rd.Routes(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rd.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	bustest.Eventually(t, func() error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1/services", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v1/services = %d", resp.StatusCode)
		}
		return nil
	})
	return srv.URL
}
