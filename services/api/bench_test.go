package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil"
)

// benchRole returns a role whose view holds n services fed directly (no
// bus: publishing 100,000 records would time the bus, not the list), a
// tenth of them down, and the router serving it.
func benchRole(b *testing.B, n int) (*Role, http.Handler, time.Time) {
	b.Helper()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := &Role{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }, view: newView()}
	g := vigil.Seconds(30 * time.Second)
	for i := range n {
		name := fmt.Sprintf("host-%06d.service %d", (i*7919)%n, i) // inserted out of order
		at := now.Add(-5 * time.Second)
		if i%10 == 0 {
			at = now.Add(-time.Hour)
		}
		r.view.putRecord(name, &vigil.Record{Op: vigil.OpPulse, At: at, Seq: uint64(i + 1), Pulse: vigil.Pulse{
			Service: name, NextIn: vigil.Seconds(10 * time.Second), Grace: &g, Host: "h",
			Owner: &vigil.Owner{Type: vigil.ChannelMail, Target: "ops@example.com"},
		}})
	}
	r.ready.Store(true)
	rt := chi.NewRouter()
	r.Routes(rt)
	return r, rt, now
}

func serve(b *testing.B, h http.Handler, target string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s = %d %s", target, w.Code, w.Body)
	}
	_, _ = io.Copy(io.Discard, w.Body)
}

// BenchmarkListServices times one page of 100 out of 100,000 services
// through the router (parse, index lookup, status, JSON), from the middle
// of the list, with and without a status filter, and reports p50 and p99
// (goal: p99 ≤ 20 ms).
//
//	go test -run XXX -bench ListServices -benchtime 2000x ./services/api/
func BenchmarkListServices(b *testing.B) {
	const n = 100_000
	r, h, _ := benchRole(b, n)
	serve(b, h, "/v1/services?limit=1") // build the index once
	mid := encodeCursor(r.view.sorted[n/2])
	for _, bc := range []struct{ name, target string }{
		{"first_page", "/v1/services?limit=100"},
		{"middle_page", "/v1/services?limit=100&cursor=" + mid},
		{"status_down", "/v1/services?limit=100&status=down&cursor=" + mid},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				ds = append(ds, timedGet(b, h, bc.target))
			}
			reportLatency(b, ds)
		})
	}
}

// BenchmarkListAfterNewService times a page when a new service arrived
// since the last request, so the sorted index has to absorb it first.
func BenchmarkListAfterNewService(b *testing.B) {
	const n = 100_000
	r, h, now := benchRole(b, n)
	serve(b, h, "/v1/services?limit=1")
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		name := fmt.Sprintf("new %d", i)
		r.view.putRecord(name, &vigil.Record{Op: vigil.OpPulse, At: now, Pulse: vigil.Pulse{Service: name, NextIn: vigil.Seconds(time.Minute)}})
		serve(b, h, "/v1/services?limit=100")
	}
}

// BenchmarkPutRecord times feeding one pulse of a known service into a view
// of 100,000 services: the follower's cost per message beyond decoding.
func BenchmarkPutRecord(b *testing.B) {
	const n = 100_000
	r, _, now := benchRole(b, n)
	names := r.view.sorted
	if len(names) == 0 {
		r.view.mu.Lock()
		r.view.reindex()
		r.view.mu.Unlock()
		names = r.view.sorted
	}
	rec := &vigil.Record{Op: vigil.OpPulse, At: now, Pulse: vigil.Pulse{NextIn: vigil.Seconds(time.Minute)}}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r.view.putRecord(names[i%n], rec)
		i++
	}
}

// BenchmarkCollect times one scrape of vigil_api_services at 100,000 services.
func BenchmarkCollect(b *testing.B) {
	r, _, now := benchRole(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		r.view.counts(now)
	}
}
