package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// recorder is a channel.Channel that keeps what it was asked to send. fail,
// when set, decides each call's error from the target and the number of
// calls so far for the message's id (1-based).
type recorder struct {
	typ   string
	mu    sync.Mutex
	sent  []sent
	tries map[string]int
	fail  func(target string, try int) error
	// gate, when set, holds every Send until it is closed.
	gate chan struct{}
}

type sent struct {
	target string
	msg    channel.Message
}

func newRecorder(typ string) *recorder { return &recorder{typ: typ, tries: map[string]int{}} }

func (r *recorder) Type() string { return r.typ }

func (r *recorder) Send(ctx context.Context, target string, m channel.Message) error {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[m.ID]++
	if r.fail != nil {
		if err := r.fail(target, r.tries[m.ID]); err != nil {
			return err
		}
	}
	r.sent = append(r.sent, sent{target, m})
	return nil
}

func (r *recorder) setFail(f func(string, int) error) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// to returns the messages sent to target.
func (r *recorder) to(target string) []channel.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []channel.Message
	for _, s := range r.sent {
		if s.target == target {
			out = append(out, s.msg)
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// harness runs notifier replicas on one embedded JetStream, with their
// HTTP routes behind one test server.
type harness struct {
	t      testing.TB
	srv    *bustest.Server
	assets *bus.Assets
	url    string
	roles  []*notifier.Role
	regs   []*prometheus.Registry
}

// testConfig is DefaultConfig with a fast retry schedule.
func testConfig(chs ...channel.Channel) notifier.Config {
	cfg := notifier.DefaultConfig()
	cfg.Channels = chs
	cfg.Retry = notifier.Retry{Initial: 20 * time.Millisecond, Max: 40 * time.Millisecond, For: 100 * time.Millisecond}
	cfg.GroupWait = 2 * time.Second
	return cfg
}

// start runs replicas notifiers with cfg and waits until their consumers
// exist.
func start(t testing.TB, cfg notifier.Config, replicas int) *harness {
	t.Helper()
	s := bustest.New(t)
	h := &harness{t: t, srv: s, assets: s.Provision(t)}
	rt := chi.NewRouter()
	for i := range replicas {
		nc := s.Conn(t)
		js, err := bus.NewJetStream(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a, err := bus.Provision(ctx, js, bus.Config{Replicas: 1})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		h.regs = append(h.regs, reg)
		r, err := notifier.New(cfg, notifier.Deps{
			Conn: nc, Assets: a, Log: bustest.Logger(t).With("replica", i), Metrics: reg,
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if i == 0 {
			r.Routes(rt)
		}
		h.roles = append(h.roles, r)
		rctx, rcancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		t.Cleanup(func() {
			rcancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
	hs := httptest.NewServer(rt)
	t.Cleanup(hs.Close)
	h.url = hs.URL
	bustest.Eventually(t, func() error {
		_, err := h.assets.JS.Consumer(context.Background(), vigil.StreamAlerts, notifier.Consumer)
		return err
	})
	return h
}

// alert stores a on VIGIL_ALERTS with its id as the message id.
func (h *harness) alert(a vigil.Alert) {
	h.t.Helper()
	h.publishAlert(a, a.ID)
}

// publishAlert stores a with message id msgID ("" for none).
func (h *harness) publishAlert(a vigil.Alert, msgID string) {
	h.t.Helper()
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	data, err := json.Marshal(a)
	if err != nil {
		h.t.Fatal(err)
	}
	m := &nats.Msg{Subject: vigil.AlertSubject(a.Kind, a.Service), Data: data, Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.assets.JS.PublishMsg(ctx, m); err != nil {
		h.t.Fatalf("publish alert: %v", err)
	}
}

// verdict writes service's verdict in KV vigil_services, as the watchdog
// does.
func (h *harness) verdict(v vigil.Verdict) {
	h.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.assets.Services.Put(context.Background(), vigil.Token(v.Service), data); err != nil {
		h.t.Fatal(err)
	}
}

// do sends an HTTP request and decodes a JSON answer into out (when not
// nil); it returns the status code.
func (h *harness) do(method, path, body string, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s = %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type attemptPage struct {
	Items      []notifier.Attempt `json:"items"`
	NextCursor string             `json:"next_cursor"`
}

// deliveries returns GET /v1/deliveries?query (every page).
func (h *harness) deliveries(query url.Values) []notifier.Attempt {
	h.t.Helper()
	var out []notifier.Attempt
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		var p attemptPage
		if code := h.do(http.MethodGet, "/v1/deliveries?"+q.Encode(), "", &p); code != http.StatusOK {
			h.t.Fatalf("GET /v1/deliveries?%s = %d", q.Encode(), code)
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		q.Set("cursor", p.NextCursor)
	}
}

// waitAttempts waits until the history holds want attempts with status
// for alert id, and returns them.
func (h *harness) waitAttempts(alert string, status notifier.Outcome, want int) []notifier.Attempt {
	h.t.Helper()
	var got []notifier.Attempt
	bustest.Eventually(h.t, func() error {
		got = h.deliveries(url.Values{"alert": {alert}, "status": {string(status)}})
		if len(got) < want {
			return fmt.Errorf("%d %s attempts for %s, want %d", len(got), status, alert, want)
		}
		return nil
	})
	return got
}

// streamMsgs returns how many messages stream holds.
func (h *harness) streamMsgs(stream string) uint64 {
	h.t.Helper()
	s, err := h.assets.JS.Stream(context.Background(), stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// settled waits until the delivery queue is empty and no job is pending.
func (h *harness) settled() {
	h.t.Helper()
	bustest.Eventually(h.t, func() error {
		if n := h.streamMsgs(vigil.StreamDeliveries); n != 0 {
			return fmt.Errorf("%d jobs queued", n)
		}
		return nil
	})
}

var errBoom = errors.New("boom")

func downAlert(service string, seq uint64) vigil.Alert {
	now := time.Now().UTC()
	return vigil.Alert{
		ID: fmt.Sprintf("down:%s:%d", vigil.Token(service), seq), Kind: vigil.AlertDown, Service: service,
		Title: service + " is down", Level: vigil.LevelError, At: now, LastPulse: now.Add(-time.Minute),
		Deadline: now.Add(-time.Second), DownSeq: seq, Host: "h1",
	}
}

// probe raises fresh alerts about service, owned by rec:probe, until one
// ends with outcome want: a way to wait for the notifier's view of the
// silences to follow a change.
func (h *harness) probe(service string, want notifier.Outcome) {
	h.t.Helper()
	i, current := 0, ""
	bustest.Eventually(h.t, func() error {
		if current != "" {
			got := h.deliveries(url.Values{"alert": {current}})
			if len(got) == 0 {
				return fmt.Errorf("probe %s: no outcome yet", current)
			}
			if got[0].Status == want {
				return nil
			}
		}
		i++
		a := downAlert(service, uint64(1000+i))
		a.Owner = &vigil.Owner{Type: "rec", Target: "probe"}
		h.alert(a)
		current = a.ID
		return fmt.Errorf("probe %s raised", current)
	})
}

// metric returns the value of the counter, gauge or histogram count name
// whose labels include labels, summed over the replicas.
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	var sum float64
	for _, reg := range h.regs {
		mfs, err := reg.Gather()
		if err != nil {
			h.t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				got := map[string]string{}
				for _, l := range m.GetLabel() {
					got[l.GetName()] = l.GetValue()
				}
				for k, v := range labels {
					if got[k] != v {
						continue metrics
					}
				}
				switch {
				case m.Counter != nil:
					sum += m.GetCounter().GetValue()
				case m.Gauge != nil:
					sum += m.GetGauge().GetValue()
				case m.Histogram != nil:
					sum += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return sum
}
