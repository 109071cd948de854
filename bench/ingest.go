package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/services/notifier"
)

// runIngest measures pulses stored per second with a durable ack: HTTP
// single pulses over a sweep of clients, HTTP batches of 100, NATS requests
// on vigil.in.pulse (single and batches of 100), all against every role
// of vigil all; and in the same run the limits: a bare net/http handler
// that decodes the same JSON, and raw JetStream sync and async publishes
// of the same payload to a stream of one message per subject (the shape
// of the pulses bucket). Each measurement runs Scale.Runs times,
// interleaved, and reports the median.
func runIngest(ctx context.Context, e *env, r *Result) error {
	sc := e.sc
	nc := notifier.DefaultConfig()
	st, err := startStack(ctx, e.tmp, allRoles(&nc))
	if err != nil {
		return err
	}
	defer func() { _ = st.stop() }()
	client := newClient(max(64, maxInt(sc.Clients)))
	defer client.CloseIdleConnections()
	if err := post(ctx, client, st.url+"/v1/pulses", "application/json", pulseBody(0), http.StatusAccepted); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	bare, err := bareServer(ctx)
	if err != nil {
		return err
	}
	defer bare.Close()
	bareURL := "http://" + bare.Addr + "/v1/pulses"

	tc, err := st.tcpConn()
	if err != nil {
		return err
	}
	js, err := bus.NewJetStream(tc)
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH_LIMIT", Subjects: []string{"bench.limit.>"}, Storage: jetstream.FileStorage,
		MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld,
	}); err != nil {
		return fmt.Errorf("limit stream: %w", err)
	}
	// Wait for ingest's NATS intake.
	if _, err := tc.Request(vigil.SubjectInPulse, pulseBody(1), 10*time.Second); err != nil {
		return fmt.Errorf("vigil.in.pulse: %w", err)
	}

	httpPulse := func(url string, clients int) func(context.Context) (load, error) {
		return func(ctx context.Context) (load, error) {
			return closedLoop(ctx, clients, sc.Window, func(ctx context.Context, _ int, n uint64) error {
				return post(ctx, client, url, "application/json", pulseBody(n), http.StatusAccepted)
			})
		}
	}
	const batchClients = 8
	natsReq := func(batch bool) func(context.Context) (load, error) {
		clients := sc.Ref
		if batch {
			clients = batchClients
		}
		return func(ctx context.Context) (load, error) {
			return closedLoop(ctx, clients, sc.Window, func(_ context.Context, _ int, n uint64) error {
				body := pulseBody(n)
				if batch {
					body = batchBody(n)
				}
				m, err := tc.Request(vigil.SubjectInPulse, body, 10*time.Second)
				if err != nil {
					return err
				}
				if s := m.Header.Get("Status"); s != "202" {
					return &statusError{what: "vigil.in.pulse", code: s, body: m.Data}
				}
				return nil
			})
		}
	}
	type measurement struct {
		name  string
		per   float64 // pulses per operation
		run   func(context.Context) (load, error)
		rates []float64
		last  load
	}
	var ms []*measurement
	for _, c := range sc.Clients {
		ms = append(ms,
			&measurement{name: fmt.Sprintf("http_pulse_c%d", c), per: 1, run: httpPulse(st.url+"/v1/pulses", c)},
			&measurement{name: fmt.Sprintf("bare_http_c%d", c), per: 1, run: httpPulse(bareURL, c)})
	}
	ms = append(ms,
		&measurement{name: "http_batch100", per: 100, run: func(ctx context.Context) (load, error) {
			return closedLoop(ctx, batchClients, sc.Window, func(ctx context.Context, _ int, n uint64) error {
				return post(ctx, client, st.url+"/v1/pulses", "application/json", batchBody(n), http.StatusAccepted)
			})
		}},
		&measurement{name: "nats_pulse", per: 1, run: natsReq(false)},
		&measurement{name: "nats_batch100", per: 100, run: natsReq(true)},
		&measurement{name: "js_sync_publish", per: 1, run: func(ctx context.Context) (load, error) {
			return closedLoop(ctx, sc.Ref, sc.Window, func(ctx context.Context, _ int, n uint64) error {
				_, err := js.Publish(ctx, "bench.limit.svc-"+strconv.FormatUint(n%100000, 10), pulseBody(n))
				return err
			})
		}},
		&measurement{name: "js_async_publish", per: 1, run: func(ctx context.Context) (load, error) {
			return asyncPublish(ctx, js, sc.Window)
		}},
	)
	var failed int64
	for run := range sc.Runs {
		for _, m := range ms {
			e.logf("ingest: run %d/%d %s", run+1, sc.Runs, m.name)
			l, err := m.run(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.rates = append(m.rates, l.rate*m.per)
			m.last = l
			failed += l.failed
		}
	}
	rate := map[string]float64{}
	for _, m := range ms {
		rate[m.name] = median(m.rates)
	}
	ref := fmt.Sprintf("_c%d", sc.Ref)
	for _, c := range sc.Clients {
		suffix := fmt.Sprintf("_c%d", c)
		mv := r.add("http_pulse"+suffix, rate["http_pulse"+suffix], "pulses/s")
		mv.Note = fmt.Sprintf("%d clients, vigil all in-process", c)
		if suffix == ref {
			mv.Goal = "≥ 24,000/s"
		}
		r.add("bare_http"+suffix, rate["bare_http"+suffix], "req/s").Note = "net/http decoding the same JSON, no store"
		r.point("vigil HTTP pulse", float64(c), rate["http_pulse"+suffix])
		r.point("bare net/http JSON handler", float64(c), rate["bare_http"+suffix])
	}
	for _, m := range ms {
		if m.name == "http_pulse"+ref {
			q := quantiles(m.last.lat, 0.5, 0.99)
			r.add("http_pulse"+ref+"_p50", q[0], "ms")
			r.add("http_pulse"+ref+"_p99", q[1], "ms")
		}
	}
	r.add("http_batch100", rate["http_batch100"], "pulses/s").Goal = "≥ 100,000/s"
	r.add("nats_pulse", rate["nats_pulse"], "pulses/s").Note = fmt.Sprintf("%d requesters on vigil.in.pulse", sc.Ref)
	r.add("nats_batch100", rate["nats_batch100"], "pulses/s").Goal = "≥ 100,000/s"
	r.add("js_sync_publish", rate["js_sync_publish"], "msgs/s").Note = fmt.Sprintf("%d publishers, each waits for its ack", sc.Ref)
	r.add("js_async_publish", rate["js_async_publish"], "msgs/s").Note = "one publisher, acks awaited at the end"
	r.add("failed_requests", float64(failed), "requests").Note = "answered with an error status (503: store timed out), over every measurement"
	ratio := func(name, a, b, note string) {
		r.add(name, rate[a]/rate[b], "ratio").Note = note
	}
	ratio("ratio_http_pulse_to_bare_http", "http_pulse"+ref, "bare_http"+ref, "vigil's HTTP pulse / the bare handler, same clients")
	ratio("ratio_http_pulse_to_js_sync", "http_pulse"+ref, "js_sync_publish", "vigil's HTTP pulse / raw sync publish")
	ratio("ratio_nats_pulse_to_js_sync", "nats_pulse", "js_sync_publish", "vigil.in.pulse / raw sync publish")
	ratio("ratio_http_batch100_to_js_async", "http_batch100", "js_async_publish", "vigil's HTTP batches / raw async publish")
	ratio("ratio_nats_batch100_to_js_async", "nats_batch100", "js_async_publish", "vigil.in.pulse batches / raw async publish")
	if path, err := exec.LookPath("wrk"); err == nil {
		if err := wrkPulses(ctx, e, r, path, st.url); err != nil {
			e.logf("ingest: wrk: %v", err)
		}
	}
	return st.stop()
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// asyncPublish publishes the pulse payload with PublishAsync (at most
// 4,000 unacknowledged) for window and returns the messages acknowledged per
// second, counting until the last ack.
func asyncPublish(ctx context.Context, js jetstream.JetStream, window time.Duration) (load, error) {
	start := time.Now()
	var n uint64
	for time.Since(start) < window && ctx.Err() == nil {
		n++
		subj, body := "bench.limit.svc-"+strconv.FormatUint(n%100000, 10), pulseBody(n)
		if err := publishAsync(ctx, js, subj, body); err != nil {
			return load{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return load{}, fmt.Errorf("async publishes not acknowledged within 30 s")
	case <-ctx.Done():
		return load{}, ctx.Err()
	}
	return load{ops: int64(n), rate: float64(n) / time.Since(start).Seconds()}, nil
}

// bareHTTP is the HTTP limit: a loopback net/http server whose handler
// reads the body (1 MiB limit), decodes it into a vigil.Pulse and answers
// 202 with a small JSON, storing nothing.
type bareHTTP struct {
	Addr string
	srv  *http.Server
}

func bareServer(ctx context.Context) (*bareHTTP, error) {
	l, err := listen(ctx)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pulses", func(w http.ResponseWriter, r *http.Request) {
		var p vigil.Pulse
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&p); err != nil {
			http.Error(w, `{"error":"body"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"accepted":1}`)
	})
	b := &bareHTTP{Addr: l.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = b.srv.Serve(l) }()
	return b, nil
}

func (b *bareHTTP) Close() { _ = b.srv.Close() }

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrkPulses measures single pulses with wrk (-t2 -c<Ref>) when it is
// installed, as a cross-check of the in-process load generator.
func wrkPulses(ctx context.Context, e *env, r *Result, wrk, url string) error {
	script := filepath.Join(e.tmp, "pulse.lua")
	const lua = `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/pulses", nil, string.format('{"service":"svc-%d","next_in":60,"grace":10,"host":"bench"}', n % 100000))
end
`
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return err
	}
	e.logf("ingest: wrk -t2 -c%d", e.sc.Ref)
	secs := max(1, int(e.sc.Window.Seconds()))
	out, err := exec.CommandContext(ctx, wrk, "-t2", fmt.Sprintf("-c%d", e.sc.Ref), fmt.Sprintf("-d%ds", secs), "-s", script, url).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("no Requests/sec in %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	r.add(fmt.Sprintf("wrk_http_pulse_c%d", e.sc.Ref), v, "pulses/s").Note = "wrk -t2, status codes not checked"
	return nil
}
