package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/ingest"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// harness is a running ingest role on a real embedded JetStream, with its
// routes on an httptest server and its NATS intake running.
type harness struct {
	t      testing.TB
	assets *bus.Assets
	nc     *nats.Conn // a client connection, not the role's
	srv    *httptest.Server
	reg    *prometheus.Registry
	bus    *bustest.Server
	stop   func() // stops Run and waits for it to return
}

func newHarness(tb testing.TB, cfg ingest.Config) *harness {
	tb.Helper()
	s := bustest.New(tb)
	a := s.Provision(tb)
	reg := prometheus.NewRegistry()
	role, err := ingest.New(cfg, ingest.Deps{
		Conn:    s.Conn(tb),
		Assets:  a,
		Log:     bustest.Logger(tb),
		Metrics: reg,
		Now:     func() time.Time { return t0 },
	})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	rt := chi.NewRouter()
	role.Routes(rt)
	srv := httptest.NewServer(rt)
	tb.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run() = %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("Run did not return after cancel")
		}
	})
	tb.Cleanup(stop)
	return &harness{t: tb, assets: a, nc: s.Conn(tb), srv: srv, reg: reg, bus: s, stop: stop}
}

func testConfig() ingest.Config {
	cfg := ingest.DefaultConfig()
	cfg.DefaultGrace = 30 * time.Second
	return cfg
}

// do sends an HTTP request and returns the status and body.
func (h *harness) do(method, path, contentType, body string, hdr ...string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, b
}

// request sends a NATS request to an intake subject, retrying while the
// role's subscription is not yet there, and returns the Status header and body.
func (h *harness) request(subject, body string, hdr ...string) (string, []byte) {
	h.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := h.nc.RequestMsg(m, 10*time.Second)
		if errors.Is(err, nats.ErrNoResponders) && time.Now().Before(deadline) {
			continue // Run has not subscribed yet; the no-responders answer is the event we wait on
		}
		if err != nil {
			h.t.Fatalf("request %s: %v", subject, err)
		}
		return resp.Header.Get("Status"), resp.Data
	}
}

// lastSeq returns the last sequence of a stream.
func (h *harness) lastSeq(stream string) uint64 {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.assets.JS.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

const pulseStream = "KV_" + vigil.BucketPulses

// stored returns the record of service in the pulses bucket, with Seq set to
// its revision.
func (h *harness) stored(service string) vigil.Record {
	h.t.Helper()
	e, err := h.assets.Pulses.Get(context.Background(), vigil.Token(service))
	if err != nil {
		h.t.Fatalf("Pulses.Get(%q): %v", vigil.Token(service), err)
	}
	var rec vigil.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		h.t.Fatalf("decode stored record %s: %v", e.Value(), err)
	}
	if rec.Seq != 0 {
		h.t.Errorf("stored record carries seq %d; seq is only for answers", rec.Seq)
	}
	rec.Seq = e.Revision()
	return rec
}

func (h *harness) counter(name, label string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// answer is the JSON of a single-pulse or cancel answer.
type answer struct {
	vigil.Record
	Duplicate bool `json:"duplicate"`
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func secs(d time.Duration) *vigil.Seconds { s := vigil.Seconds(d); return &s }

func TestPulseSingle(t *testing.T) {
	h := newHarness(t, testConfig())
	code, body := h.do("POST", "/v1/pulses", "application/json; charset=utf-8",
		`{"service":"db-backup","next_in":60,"owner":{"type":"email","target":"ops@example.com"},"host":"h1","message":"ok"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses = %d %s, want 202", code, body)
	}
	got := decode[answer](t, body)
	want := vigil.Record{
		Op: vigil.OpPulse,
		Pulse: vigil.Pulse{
			Service: "db-backup", NextIn: vigil.Seconds(time.Minute), Grace: secs(30 * time.Second),
			Owner: &vigil.Owner{Type: "mail", Target: "ops@example.com"}, Host: "h1", Message: "ok",
		},
		At: t0, ID: got.ID, Seq: got.Seq,
	}
	if diff := cmp.Diff(want, got.Record); diff != "" {
		t.Errorf("answer record (-want +got):\n%s", diff)
	}
	if got.ID == "" || got.Seq == 0 || got.Duplicate {
		t.Errorf("answer id = %q, seq = %d, duplicate = %v; want an id, a seq and no duplicate", got.ID, got.Seq, got.Duplicate)
	}
	if diff := cmp.Diff(got.Record, h.stored("db-backup")); diff != "" {
		t.Errorf("stored record (-answer +stored):\n%s", diff)
	}
	if got := h.counter("vigil_pulses_accepted_total", ""); got != 1 {
		t.Errorf("vigil_pulses_accepted_total = %v, want 1", got)
	}
}

func TestPulseGraceKept(t *testing.T) {
	h := newHarness(t, testConfig())
	code, body := h.do("POST", "/v1/pulses", "", `{"service":"a","next_in":0.5,"grace":0}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	rec := h.stored("a")
	if rec.NextIn != vigil.Seconds(500*time.Millisecond) || rec.Grace == nil || *rec.Grace != 0 {
		t.Errorf("stored next_in, grace = %v, %v; want 500ms, 0", rec.NextIn, rec.Grace)
	}
}

func TestPulseBatch(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		services                []string
	}{
		{"array", "application/json", `[{"service":"a","next_in":60},{"service":"b","next_in":1,"grace":5},{"service":"c d","next_in":3600}]`, []string{"a", "b", "c d"}},
		{"array of one", "", `[{"service":"a","next_in":60}]`, []string{"a"}},
		{"ndjson", "application/x-ndjson", "{\"service\":\"a\",\"next_in\":60}\n{\"service\":\"b\",\"next_in\":1}\n\n{\"service\":\"c.d\",\"next_in\":2}\n", []string{"a", "b", "c.d"}},
		{"jsonl", "application/jsonl; charset=UTF-8", `{"service":"x","next_in":60}`, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			code, body := h.do("POST", "/v1/pulses", tt.contentType, tt.body)
			if code != http.StatusAccepted {
				t.Fatalf("POST = %d %s, want 202", code, body)
			}
			want := fmt.Sprintf(`{"accepted":%d,"duplicates":0}`, len(tt.services))
			if string(body) != want {
				t.Errorf("POST body = %s, want %s", body, want)
			}
			for _, s := range tt.services {
				if rec := h.stored(s); rec.Service != s || rec.Op != vigil.OpPulse || !rec.At.Equal(t0) || rec.Grace == nil {
					t.Errorf("stored(%q) = %+v", s, rec)
				}
			}
			if got := h.lastSeq(pulseStream); got != uint64(len(tt.services)) {
				t.Errorf("stream last seq = %d, want %d", got, len(tt.services))
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, testConfig())
	const single = `{"service":"a","next_in":60}`
	code, first := h.do("POST", "/v1/pulses", "", single, "Idempotency-Key", "k1")
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, first)
	}
	code, retry := h.do("POST", "/v1/pulses", "", single, "Idempotency-Key", "k1")
	if code != http.StatusAccepted {
		t.Fatalf("retry POST = %d %s", code, retry)
	}
	a1, a2 := decode[answer](t, first), decode[answer](t, retry)
	if !a2.Duplicate || a1.Duplicate {
		t.Errorf("duplicate flags = %v, %v; want false, true", a1.Duplicate, a2.Duplicate)
	}
	if diff := cmp.Diff(a1.Record, a2.Record); diff != "" {
		t.Errorf("retry answer differs from the first (-first +retry):\n%s", diff)
	}
	if got := h.lastSeq(pulseStream); got != 1 {
		t.Errorf("stream last seq after a retried single = %d, want 1", got)
	}

	// Another key is another request.
	if code, body := h.do("POST", "/v1/pulses", "", single, "Idempotency-Key", "k2"); code != http.StatusAccepted || decode[answer](t, body).Duplicate {
		t.Errorf("POST with a new key = %d %s, want 202 and no duplicate", code, body)
	}

	const batch = `[{"service":"a","next_in":60},{"service":"b","next_in":60},{"service":"a","next_in":60}]`
	before := h.lastSeq(pulseStream)
	for i, want := range []string{`{"accepted":3,"duplicates":0}`, `{"accepted":3,"duplicates":3}`} {
		code, body := h.do("POST", "/v1/pulses", "", batch, "Idempotency-Key", "batch-1")
		if code != http.StatusAccepted || string(body) != want {
			t.Errorf("batch POST #%d = %d %s, want 202 %s", i, code, body, want)
		}
	}
	if got := h.lastSeq(pulseStream); got != before+3 {
		t.Errorf("stream last seq after a retried batch = %d, want %d", got, before+3)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, testConfig())
	big := `{"service":"a","next_in":60,"message":"` + strings.Repeat("x", 1<<20) + `"}`
	many := "[" + strings.Repeat(`{"service":"a","next_in":1},`, 10000) + `{"service":"a","next_in":1}]`
	tests := []struct {
		name, contentType, body string
		code                    int
		field                   string
	}{
		{"malformed", "", `{"service":`, 400, ""},
		{"not json", "", `hello`, 400, ""},
		{"empty", "", ``, 400, ""},
		{"missing service", "", `{"next_in":60}`, 400, "service"},
		{"service too long", "", `{"service":"` + strings.Repeat("s", 257) + `","next_in":60}`, 400, "service"},
		{"service not a string", "", `{"service":5,"next_in":60}`, 400, "service"},
		{"missing next_in", "", `{"service":"a"}`, 400, "next_in"},
		{"zero next_in", "", `{"service":"a","next_in":0}`, 400, "next_in"},
		{"negative next_in", "", `{"service":"a","next_in":-5}`, 400, "next_in"},
		{"next_in over a year", "", `{"service":"a","next_in":31536001}`, 400, "next_in"},
		{"next_in string", "", `{"service":"a","next_in":"60"}`, 400, "next_in"},
		{"next_in null", "", `{"service":"a","next_in":null}`, 400, "next_in"},
		{"negative grace", "", `{"service":"a","next_in":60,"grace":-1}`, 400, "grace"},
		{"unknown field", "", `{"service":"a","next_in":60,"color":"red"}`, 400, "color"},
		{"unknown owner field", "", `{"service":"a","next_in":60,"owner":{"type":"mail","target":"a@b.c","x":1}}`, 400, "owner.x"},
		{"bad owner type", "", `{"service":"a","next_in":60,"owner":{"type":"sms","target":"1"}}`, 400, "owner.type"},
		{"bad owner mail", "", `{"service":"a","next_in":60,"owner":{"type":"mail","target":"nope"}}`, 400, "owner.target"},
		{"owner not an object", "", `{"service":"a","next_in":60,"owner":"me"}`, 400, "owner"},
		{"trailing garbage", "", `{"service":"a","next_in":60} x`, 400, ""},
		{"two objects as json", "application/json", `{"service":"a","next_in":60}{"service":"b","next_in":60}`, 400, ""},
		{"empty array", "", `[]`, 400, ""},
		{"array of numbers", "", `[1]`, 400, "[0]"},
		{"bad item in batch", "", `[{"service":"a","next_in":60},{"service":"b","next_in":60},{"service":"c","next_in":60},{"service":"d","next_in":0}]`, 400, "[3].next_in"},
		{"bad owner in batch", "", `[{"service":"a","next_in":60},{"service":"b","next_in":60,"owner":{"type":"sms","target":"1"}}]`, 400, "[1].owner.type"},
		{"unknown field in batch", "", `[{"service":"a","next_in":60},{"service":"b","next_in":60,"z":1}]`, 400, "[1].z"},
		{"unclosed array", "", `[{"service":"a","next_in":60}`, 400, ""},
		{"bad ndjson line", "application/x-ndjson", "{\"service\":\"a\",\"next_in\":60}\n{\"next_in\":60}\n", 400, "[1].service"},
		{"ndjson array line", "application/x-ndjson", "{\"service\":\"a\",\"next_in\":60}\n[1]\n", 400, "[1]"},
		{"body over the limit", "", big, 413, ""},
		{"batch over the limit", "", many, 413, ""},
		{"form", "application/x-www-form-urlencoded", `service=a&next_in=60`, 415, ""},
		{"text", "text/plain", `{"service":"a","next_in":60}`, 415, ""},
		{"latin1", "application/json; charset=latin1", `{"service":"a","next_in":60}`, 415, ""},
		{"bad content type", "application/json; =", `{"service":"a","next_in":60}`, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.lastSeq(pulseStream)
			code, body := h.do("POST", "/v1/pulses", tt.contentType, tt.body)
			if code != tt.code {
				t.Errorf("POST %.60s = %d %s, want %d", tt.body, code, body, tt.code)
			}
			e := decode[struct{ Error, Field string }](t, body)
			if e.Field != tt.field || e.Error == "" {
				t.Errorf("POST %.60s error = %q field %q, want field %q", tt.body, e.Error, e.Field, tt.field)
			}
			if got := h.lastSeq(pulseStream); got != before {
				t.Errorf("stream last seq = %d after a rejected request, want %d (nothing published)", got, before)
			}
		})
	}
	wantRejected := map[string]float64{}
	for _, tt := range tests {
		wantRejected[map[int]string{400: "invalid", 413: "too_large", 415: "media_type"}[tt.code]]++
	}
	for reason, want := range wantRejected {
		if got := h.counter("vigil_pulses_rejected_total", reason); got != want {
			t.Errorf("vigil_pulses_rejected_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, testConfig())
	code, body := h.do("DELETE", "/v1/services/nobody", "", "")
	if code != http.StatusNotFound {
		t.Errorf("DELETE unknown = %d %s, want 404", code, body)
	}
	if e := decode[struct{ Error, Field string }](t, body); e.Error == "" {
		t.Errorf("DELETE unknown body = %s, want an error", body)
	}

	if code, body := h.do("POST", "/v1/pulses", "", `{"service":"db","next_in":60,"host":"h"}`); code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	pulse := h.stored("db")
	code, body = h.do("DELETE", "/v1/services/db", "", "")
	if code != http.StatusOK {
		t.Fatalf("DELETE db = %d %s, want 200", code, body)
	}
	got := decode[answer](t, body)
	want := pulse
	want.Op, want.CancelledAt, want.ID, want.Seq = vigil.OpCancel, t0, got.ID, got.Seq
	if diff := cmp.Diff(want, got.Record); diff != "" {
		t.Errorf("cancel answer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got.Record, h.stored("db")); diff != "" {
		t.Errorf("stored cancel (-answer +stored):\n%s", diff)
	}

	// Cancelling again answers the stored cancel and writes nothing.
	before := h.lastSeq(pulseStream)
	code, again := h.do("DELETE", "/v1/services/db", "", "")
	if code != http.StatusOK {
		t.Fatalf("second DELETE = %d %s, want 200", code, again)
	}
	if diff := cmp.Diff(got.Record, decode[answer](t, again).Record); diff != "" {
		t.Errorf("second cancel answer (-first +second):\n%s", diff)
	}
	if got := h.lastSeq(pulseStream); got != before {
		t.Errorf("stream last seq = %d after cancelling a cancelled service, want %d", got, before)
	}

	// A pulse revives it.
	if code, body := h.do("POST", "/v1/pulses", "", `{"service":"db","next_in":60}`); code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	if rec := h.stored("db"); rec.Op != vigil.OpPulse || !rec.CancelledAt.IsZero() {
		t.Errorf("record after a new pulse = %+v, want op pulse without cancelled_at", rec)
	}
}

// TestNamesCannotEscape checks that names with subject syntax are stored
// under their own token and cancel only themselves.
func TestNamesCannotEscape(t *testing.T) {
	h := newHarness(t, testConfig())
	names := []string{"a.b *>", "a", "b", "*", ">", "a.b", "a/b", "100%", "my service", "_a", "Größe ✓"}
	for _, n := range names {
		body, _ := json.Marshal(vigil.Pulse{Service: n, NextIn: vigil.Seconds(time.Minute)})
		if code, b := h.do("POST", "/v1/pulses", "", string(body)); code != http.StatusAccepted {
			t.Fatalf("POST %q = %d %s", n, code, b)
		}
	}
	ctx := context.Background()
	keys, err := h.assets.Pulses.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range keys.Keys() {
		got = append(got, k)
	}
	want := make([]string, len(names))
	for i, n := range names {
		want[i] = vigil.Token(n)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bucket keys (-want +got):\n%s", diff)
	}
	for _, n := range names {
		if rec := h.stored(n); rec.Service != n {
			t.Errorf("record under Token(%q) is for %q", n, rec.Service)
		}
		if tok := vigil.Token(n); strings.ContainsAny(tok, ".*> \t") {
			t.Errorf("Token(%q) = %q has subject syntax", n, tok)
		}
	}

	code, body := h.do("DELETE", "/v1/services/"+url.PathEscape("a.b *>"), "", "")
	if code != http.StatusOK || decode[answer](t, body).Service != "a.b *>" {
		t.Fatalf("DELETE a.b *> = %d %s", code, body)
	}
	for _, n := range []string{"a/b", "100%", "my service"} {
		code, body := h.do("DELETE", "/v1/services/"+url.PathEscape(n), "", "")
		if code != http.StatusOK || decode[answer](t, body).Service != n {
			t.Errorf("DELETE %q = %d %s", n, code, body)
		}
	}
	cancelled := map[string]bool{"a.b *>": true, "a/b": true, "100%": true, "my service": true}
	for _, n := range names {
		if got, want := h.stored(n).Op, map[bool]vigil.Op{true: vigil.OpCancel, false: vigil.OpPulse}[cancelled[n]]; got != want {
			t.Errorf("op of %q = %q, want %q", n, got, want)
		}
	}
}

func TestManualAlert(t *testing.T) {
	h := newHarness(t, testConfig())
	const in = `{"service":"db.backup","title":"disk full","message":"/var is at 99%","level":"critical","owner":{"type":"webhook","target":"https://example.com/hook"}}`
	code, body := h.do("POST", "/v1/alerts", "application/json", in, "Idempotency-Key", "a1")
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/alerts = %d %s, want 202", code, body)
	}
	got := decode[struct {
		vigil.Alert
		Duplicate bool `json:"duplicate"`
	}](t, body)
	want := vigil.Alert{
		ID: got.ID, Kind: vigil.AlertManual, Service: "db.backup", Title: "disk full", Message: "/var is at 99%",
		Level: vigil.LevelCritical, Owner: &vigil.Owner{Type: "webhook", Target: "https://example.com/hook"}, At: t0, Seq: got.Seq,
	}
	if diff := cmp.Diff(want, got.Alert); diff != "" {
		t.Errorf("alert answer (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.ID, "manual:") || got.Seq == 0 {
		t.Errorf("alert id = %q seq = %d, want manual:… and a seq", got.ID, got.Seq)
	}
	ctx := context.Background()
	raw, err := h.assets.Alerts.GetMsg(ctx, got.Seq)
	if err != nil {
		t.Fatalf("GetMsg(%d): %v", got.Seq, err)
	}
	if raw.Subject != vigil.AlertSubject(vigil.AlertManual, "db.backup") {
		t.Errorf("alert subject = %q, want %q", raw.Subject, vigil.AlertSubject(vigil.AlertManual, "db.backup"))
	}
	if id := raw.Header.Get(jetstream.MsgIDHeader); id != got.ID {
		t.Errorf("alert Nats-Msg-Id = %q, want %q", id, got.ID)
	}
	stored := decode[vigil.Alert](t, raw.Data)
	stored.Seq = raw.Sequence
	if diff := cmp.Diff(got.Alert, stored); diff != "" {
		t.Errorf("stored alert (-answer +stored):\n%s", diff)
	}

	code, body = h.do("POST", "/v1/alerts", "", in, "Idempotency-Key", "a1")
	if code != http.StatusAccepted || !strings.Contains(string(body), `"duplicate":true`) {
		t.Errorf("retried alert = %d %s, want 202 duplicate", code, body)
	}
	if got := h.lastSeq(vigil.StreamAlerts); got != 1 {
		t.Errorf("alerts last seq = %d after a retry, want 1", got)
	}
	if got := h.counter("vigil_manual_alerts_total", ""); got != 1 {
		t.Errorf("vigil_manual_alerts_total = %v, want 1", got)
	}

	bad := []struct{ name, contentType, body, field string }{
		{"no title", "", `{"message":"m","level":1}`, "title"},
		{"bad level", "", `{"title":"t","level":"loud"}`, "level"},
		{"negative level", "", `{"title":"t","level":-1}`, "level"},
		{"unknown field", "", `{"title":"t","urgent":true}`, "urgent"},
		{"bad owner", "", `{"title":"t","owner":{"type":"pager","target":"x"}}`, "owner.type"},
		{"array", "", `[{"title":"t"}]`, ""},
		{"ndjson", "application/x-ndjson", `{"title":"t"}`, ""},
	}
	for _, tt := range bad {
		code, body := h.do("POST", "/v1/alerts", tt.contentType, tt.body)
		wantCode := http.StatusBadRequest
		if tt.contentType != "" {
			wantCode = http.StatusUnsupportedMediaType
		}
		e := decode[struct{ Error, Field string }](t, body)
		if code != wantCode || e.Field != tt.field {
			t.Errorf("%s: POST /v1/alerts %s = %d field %q, want %d field %q (%s)", tt.name, tt.body, code, e.Field, wantCode, tt.field, e.Error)
		}
	}
	if got := h.lastSeq(vigil.StreamAlerts); got != 1 {
		t.Errorf("alerts last seq = %d after rejected alerts, want 1", got)
	}
}

func TestNATSIntake(t *testing.T) {
	h := newHarness(t, testConfig())
	const in = `{"service":"nats svc","next_in":60,"grace":5}`

	status, body := h.request(vigil.SubjectInPulse, in)
	if status != "202" {
		t.Fatalf("request %s = %s %s, want 202", vigil.SubjectInPulse, status, body)
	}
	viaNATS := decode[answer](t, body)
	if diff := cmp.Diff(viaNATS.Record, h.stored("nats svc")); diff != "" {
		t.Errorf("stored record (-reply +stored):\n%s", diff)
	}
	code, hbody := h.do("POST", "/v1/pulses", "", in)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, hbody)
	}
	viaHTTP := decode[answer](t, hbody)
	// The same body but for the per-message id and the sequence.
	viaHTTP.ID, viaHTTP.Seq = viaNATS.ID, viaNATS.Seq
	if diff := cmp.Diff(viaHTTP, viaNATS); diff != "" {
		t.Errorf("NATS reply vs HTTP answer (-http +nats):\n%s", diff)
	}

	// Rejections answer byte for byte what HTTP answers, and store nothing.
	for _, bad := range []string{
		`{"service":"x","next_in":0}`, `[{"service":"x","next_in":60},{"next_in":60}]`, `{"service":"x","next_in":60,"zzz":1}`, `nope`,
		`{"service":`, `{"service":"x","next_in":60} x`, `null`, `5`, `  `, `[]`, `{"service":"x","next_in":"1"}`,
	} {
		before := h.lastSeq(pulseStream)
		status, body := h.request(vigil.SubjectInPulse, bad)
		code, hbody := h.do("POST", "/v1/pulses", "", bad)
		if status != "400" || code != 400 || string(body) != string(hbody) {
			t.Errorf("invalid %s: NATS %s %s, HTTP %d %s; want the same 400", bad, status, body, code, hbody)
		}
		if got := h.lastSeq(pulseStream); got != before {
			t.Errorf("invalid %s: stream last seq = %d, want %d", bad, got, before)
		}
	}
	if status, body := h.request(vigil.SubjectInPulse, in, "Content-Type", "text/plain"); status != "415" {
		t.Errorf("text/plain on NATS = %s %s, want 415", status, body)
	}

	// NDJSON without a content type, and arrays, are batches.
	status, body = h.request(vigil.SubjectInPulse, "{\"service\":\"n1\",\"next_in\":60}\n{\"service\":\"n2\",\"next_in\":60}\n", "Nats-Msg-Id", "m1")
	if status != "202" || string(body) != `{"accepted":2,"duplicates":0}` {
		t.Errorf("ndjson on NATS = %s %s", status, body)
	}
	status, body = h.request(vigil.SubjectInPulse, "{\"service\":\"n1\",\"next_in\":60}\n{\"service\":\"n2\",\"next_in\":60}\n", "Nats-Msg-Id", "m1")
	if status != "202" || string(body) != `{"accepted":2,"duplicates":2}` {
		t.Errorf("retried ndjson on NATS = %s %s, want 2 duplicates", status, body)
	}

	// A fire-and-forget publish is stored too.
	if err := h.nc.Publish(vigil.SubjectInPulse, []byte(`{"service":"ff","next_in":60}`)); err != nil {
		t.Fatal(err)
	}
	// It has no reply to wait on, so wait for it in the bucket.
	w, err := h.assets.Pulses.Watch(context.Background(), vigil.Token("ff"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	for stored := false; !stored; {
		select {
		case e := <-w.Updates():
			stored = e != nil
		case <-time.After(10 * time.Second):
			t.Fatal("the fire-and-forget pulse was not stored")
		}
	}
	status, body = h.request(vigil.SubjectInCancel, `{"service":"ff"}`)
	if status != "200" || decode[answer](t, body).Op != vigil.OpCancel {
		t.Errorf("cancel on NATS = %s %s, want 200 op cancel", status, body)
	}
	if status, body := h.request(vigil.SubjectInCancel, `{"service":"nobody"}`); status != "404" {
		t.Errorf("cancel of unknown on NATS = %s %s, want 404", status, body)
	}
	if status, body := h.request(vigil.SubjectInCancel, `{"name":"ff"}`); status != "400" || !strings.Contains(string(body), `"field":"name"`) {
		t.Errorf("bad cancel on NATS = %s %s, want 400 field name", status, body)
	}

	status, body = h.request(vigil.SubjectInAlert, `{"title":"hello","level":2}`, "Idempotency-Key", "x")
	if status != "202" || !strings.Contains(string(body), `"kind":"manual"`) {
		t.Errorf("alert on NATS = %s %s", status, body)
	}
	if status, body := h.request(vigil.SubjectInAlert, `{"level":2}`); status != "400" || !strings.Contains(string(body), `"field":"title"`) {
		t.Errorf("bad alert on NATS = %s %s, want 400 field title", status, body)
	}
}

// TestRunDrains checks that pulses the intake has been handed before Run's
// context ends are all stored before Run returns.
func TestRunDrains(t *testing.T) {
	h := newHarness(t, testConfig())
	h.request(vigil.SubjectInPulse, `{"service":"warm-up","next_in":60}`) // Run is subscribed
	const n = 500
	for i := range n {
		if err := h.nc.Publish(vigil.SubjectInPulse, fmt.Appendf(nil, `{"service":"s%d","next_in":60}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.nc.Flush(); err != nil { // the server has routed them all to the role
		t.Fatal(err)
	}
	h.stop()
	if got := h.lastSeq(pulseStream); got != n+1 {
		t.Errorf("stream last seq after Run returned = %d, want %d", got, n+1)
	}
}

func TestUnavailable(t *testing.T) {
	cfg := testConfig()
	cfg.PublishTimeout = 500 * time.Millisecond
	h := newHarness(t, cfg)
	h.bus.Stop()
	tests := []struct{ body, wantErr string }{
		{`{"service":"a","next_in":60}`, "store pulse"},
		{`[{"service":"a","next_in":60},{"service":"b","next_in":60}]`, "0 of 2 stored"},
	}
	for _, tt := range tests {
		code, body := h.do("POST", "/v1/pulses", "", tt.body)
		e := decode[struct{ Error, Field string }](t, body)
		if code != http.StatusServiceUnavailable || !strings.Contains(e.Error, tt.wantErr) {
			t.Errorf("POST %s with JetStream down = %d %s, want 503 mentioning %q", tt.body, code, body, tt.wantErr)
		}
	}
	if got := h.counter("vigil_pulses_rejected_total", "unavailable"); got != 2 {
		t.Errorf("vigil_pulses_rejected_total{reason=unavailable} = %v, want 2", got)
	}
	// Validation still answers without JetStream.
	if code, body := h.do("POST", "/v1/pulses", "", `{"service":"a"}`); code != http.StatusBadRequest {
		t.Errorf("invalid POST with JetStream down = %d %s, want 400", code, body)
	}
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*ingest.Config)) ingest.Config { c := ingest.DefaultConfig(); f(&c); return c }
	tests := []struct {
		name string
		cfg  ingest.Config
		ok   bool
	}{
		{"default", ingest.DefaultConfig(), true},
		{"grace", mod(func(c *ingest.Config) { c.DefaultGrace = time.Minute }), true},
		{"negative grace", mod(func(c *ingest.Config) { c.DefaultGrace = -1 }), false},
		{"zero body", mod(func(c *ingest.Config) { c.MaxBody = 0 }), false},
		{"zero batch", mod(func(c *ingest.Config) { c.MaxBatch = 0 }), false},
		{"zero timeout", mod(func(c *ingest.Config) { c.PublishTimeout = 0 }), false},
		{"zero workers", mod(func(c *ingest.Config) { c.Workers = 0 }), false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
