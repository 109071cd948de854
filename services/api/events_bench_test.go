package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// reportLatency reports the median and the 99th percentile of ds, in
// milliseconds.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	pct := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(float64(len(ds))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// timedGet serves target through h, fails on anything but 200, and
// returns how long it took.
func timedGet(b *testing.B, h http.Handler, target string) time.Duration {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, req)
	d := time.Since(start)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s = %d %s", target, w.Code, w.Body)
	}
	_, _ = io.Copy(io.Discard, w.Body)
	return d
}

// BenchmarkEvents1M measures the event queries on a real stream of
// 1,000,000 events spread evenly over the last 24 h, 1,000 services of
// 1,000 events each. The setup publishes the events with PublishAsync
// straight to VIGIL_EVENTS (not through ingest), runs the role until its
// index has caught up, and reports that time and the index's heap cost per
// event. Each sub-benchmark serves GET /v1/events through the router,
// direct gets of the page included, and reports p50 and p99.
//
//	go test -run XXX -bench Events1M -benchtime 200x ./services/api/
func BenchmarkEvents1M(b *testing.B) {
	const n, services = 1_000_000, 1000
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := bustest.New(b)
	a := s.Provision(b)
	js := s.JetStream(b)
	start := time.Now()
	step := 24 * time.Hour / n
	var buf []byte
	for i := range n {
		svc := "svc-" + strconv.Itoa(i%services)
		buf = append(buf[:0], `{"service":"`...)
		buf = append(buf, svc...)
		buf = append(buf, `","level":`...)
		buf = strconv.AppendInt(buf, int64(i/services%5), 10)
		buf = append(buf, `,"message":"request `...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, ` from 10.0.`...)
		buf = strconv.AppendInt(buf, int64(i%256), 10)
		buf = append(buf, ` took 1.2 s; upstream \"billing\" answered 503","received":"`...)
		buf = now.Add(-24*time.Hour+time.Duration(i)*step).AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, `"}`...)
		if _, err := js.PublishAsync(vigil.EventSubject(svc), slices.Clone(buf)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publishing did not complete")
	}
	b.Logf("published %d events in %v", n, time.Since(start).Round(time.Millisecond))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg := DefaultConfig()
	r, err := New(cfg, Deps{Conn: s.Conn(b), Assets: a, Metrics: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	start = time.Now()
	for !r.events.ready.Load() {
		time.Sleep(10 * time.Millisecond) // a benchmark's setup, not a test
	}
	catchUp := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	entries, svcs := r.events.size()
	perEvent := float64(after.HeapAlloc-before.HeapAlloc) / float64(entries)
	b.Logf("index: %d events of %d services caught up in %v, heap %.0f bytes/event", entries, svcs, catchUp.Round(time.Millisecond), perEvent)
	if entries != n {
		b.Fatalf("index holds %d events, want %d", entries, n)
	}
	rt := chi.NewRouter()
	r.Routes(rt)
	for _, bc := range []struct{ name, target string }{
		{"first_page", "/v1/events?limit=100"},
		{"service_exact_page", "/v1/events?limit=100&service_exact=svc-42"},
		{"service_regex_page", "/v1/events?limit=100&service=^svc-42$"},
		{"service_level_page", "/v1/events?limit=100&service_exact=svc-42&level=error"},
		{"regex_scan_1M", "/v1/events?limit=100&message=" + "upstream%20%22ledger%22"}, // matches none: scans all 1M
		{"regex_scan_1M_case", "/v1/events?limit=100&message=FROM%2010%5C.0%5C.3%20took%202"},
		{"regex_scan_1M_class", "/v1/events?limit=100&message=%5Cd%7B3%7D%20took%209%5C."}, // \d{3} took 9\. : no literal prefix
		{"regex_scan_1M_noliteral", "/v1/events?limit=100&message=%5Cd%7B7%7D"},            // \d{7}: no literal at all
	} {
		b.Run(bc.name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				ds = append(ds, timedGet(b, rt, bc.target))
			}
			reportLatency(b, ds)
			b.ReportMetric(perEvent, "heap-B/event")
			b.ReportMetric(catchUp.Seconds(), "catchup-s")
		})
	}
}
