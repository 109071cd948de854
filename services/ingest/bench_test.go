package ingest_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil"
)

// Benchmarks run the whole path in one process: the Go HTTP client (or NATS
// requester), the ingest role, and the embedded JetStream server storing to
// disk, each request answered only after its PubAck. They report pulses/s.
//
//	go test -run XXX -bench . -benchtime 3s ./services/ingest/

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}}
}

// pulseBody returns a pulse JSON for one of 100,000 services.
func pulseBody(n uint64) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"service":"svc-`...)
	b = strconv.AppendUint(b, n%100000, 10)
	return append(b, `","next_in":60,"grace":10,"host":"bench"}`...)
}

func reportPulses(b *testing.B, n int64) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pulses/s")
}

func post(b *testing.B, c *http.Client, url string, body []byte) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Errorf("POST = %d", resp.StatusCode)
	}
}

func BenchmarkHTTPPulse(b *testing.B) {
	h := newHarness(b, testConfig())
	c := benchClient()
	url := h.srv.URL + "/v1/pulses"
	var seq atomic.Uint64
	b.SetParallelism(16) // 16 × GOMAXPROCS concurrent clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, c, url, pulseBody(seq.Add(1)))
		}
	})
	reportPulses(b, int64(b.N))
}

// BenchmarkHTTPBaseline is the ceiling of the HTTP benchmarks on this
// machine: the same client and server with a handler that reads the body and
// answers 202 without decoding or storing anything.
func BenchmarkHTTPBaseline(b *testing.B) {
	rt := chi.NewRouter()
	rt.Post("/v1/pulses", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":1}`))
	})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	c := benchClient()
	var seq atomic.Uint64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, c, srv.URL+"/v1/pulses", pulseBody(seq.Add(1)))
		}
	})
	reportPulses(b, int64(b.N))
}

func BenchmarkHTTPBatch100(b *testing.B) {
	h := newHarness(b, testConfig())
	c := benchClient()
	url := h.srv.URL + "/v1/pulses"
	var seq atomic.Uint64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := []byte{'['}
			for i := range 100 {
				if i > 0 {
					body = append(body, ',')
				}
				body = append(body, pulseBody(seq.Add(1))...)
			}
			post(b, c, url, append(body, ']'))
		}
	})
	reportPulses(b, int64(b.N)*100)
}

func BenchmarkNATSPulse(b *testing.B) {
	h := newHarness(b, testConfig())
	h.request(vigil.SubjectInPulse, `{"service":"warm-up","next_in":60}`) // waits for Run's subscriptions
	var seq atomic.Uint64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := h.nc.Request(vigil.SubjectInPulse, pulseBody(seq.Add(1)), 10e9)
			if err != nil {
				b.Error(err)
				continue
			}
			if s := resp.Header.Get("Status"); s != "202" {
				b.Errorf("reply Status = %q, want 202", s)
			}
		}
	})
	reportPulses(b, int64(b.N))
}

func BenchmarkNATSBatch100(b *testing.B) {
	h := newHarness(b, testConfig())
	h.request(vigil.SubjectInPulse, `{"service":"warm-up","next_in":60}`)
	var seq atomic.Uint64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var body []byte
			for range 100 {
				body = append(append(body, pulseBody(seq.Add(1))...), '\n')
			}
			resp, err := h.nc.Request(vigil.SubjectInPulse, body, 10e9)
			if err != nil {
				b.Error(err)
				continue
			}
			if s := resp.Header.Get("Status"); s != "202" {
				b.Errorf("reply Status = %q, want 202: %s", s, resp.Data)
			}
		}
	})
	reportPulses(b, int64(b.N)*100)
}
