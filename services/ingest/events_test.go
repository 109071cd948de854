package ingest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// hostile are messages watchTower's CSV store mangled, and then some: every
// one must come back byte for byte.
var hostile = []string{
	`"leading quote`,
	`a;b;c`,
	"two\nlines\r\nand a tab\t",
	`quotes "inside" and 'single' and \backslash\`,
	`""`,
	"unicode: Größe ✓ 😀 \u2028\u2029",
	"html <script>&amp;</script>",
	"nul \x00 and bell \a",
	`{"looks":"like json"}`,
	" leading and trailing spaces ",
	`;"`,
}

// storedEvent reads the event at seq from VIGIL_EVENTS with its subject and
// raw JSON.
func (h *harness) storedEvent(seq uint64) (vigil.Event, *jetstream.RawStreamMsg) {
	h.t.Helper()
	m, err := h.assets.Events.GetMsg(context.Background(), seq)
	if err != nil {
		h.t.Fatalf("Events.GetMsg(%d): %v", seq, err)
	}
	e := decode[vigil.Event](h.t, m.Data)
	if e.Seq != 0 {
		h.t.Errorf("stored event carries seq %d; seq is only for answers", e.Seq)
	}
	e.Seq = m.Sequence
	return e, m
}

type eventAnswer struct {
	vigil.Event
	Duplicate bool `json:"duplicate"`
}

func TestEventSingle(t *testing.T) {
	h := newHarness(t, testConfig())
	in := `{"service":"db.backup","level":"error","message":"\"disk; full\"\nsecond line","at":"2026-11-21T12:59:58.5+01:00","attrs":{"disk":"/var","z":"last","a":"first"}}`
	code, body := h.do("POST", "/v1/events", "application/json", in)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/events = %d %s, want 202", code, body)
	}
	got := decode[eventAnswer](t, body)
	want := vigil.Event{
		Service: "db.backup", Level: vigil.LevelError, Message: "\"disk; full\"\nsecond line",
		At: time.Date(2026, 11, 21, 12, 59, 58, 5e8, time.FixedZone("", 3600)), Received: t0,
		Attrs: map[string]string{"disk": "/var", "z": "last", "a": "first"}, ID: got.ID, Seq: got.Seq,
	}
	if diff := cmp.Diff(want, got.Event); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if got.ID == "" || got.Seq == 0 || got.Duplicate {
		t.Errorf("answer id %q seq %d duplicate %v, want an id, a seq, no duplicate", got.ID, got.Seq, got.Duplicate)
	}
	stored, raw := h.storedEvent(got.Seq)
	if diff := cmp.Diff(got.Event, stored); diff != "" {
		t.Errorf("stored (-answer +stored):\n%s", diff)
	}
	if raw.Subject != vigil.EventSubject("db.backup") {
		t.Errorf("subject = %q, want %q", raw.Subject, vigil.EventSubject("db.backup"))
	}
	if id := raw.Header.Get(jetstream.MsgIDHeader); id != "" {
		t.Errorf("Nats-Msg-Id = %q without an Idempotency-Key, want none", id)
	}
	// The hand-written encoder writes exactly what encoding/json writes.
	stored.Seq = 0
	if b, _ := json.Marshal(&stored); string(b) != string(raw.Data) {
		t.Errorf("stored JSON\n%s\nwant (json.Marshal)\n%s", raw.Data, b)
	}
	if n := reflect.TypeFor[vigil.Event]().NumField(); n != 9 {
		t.Errorf("vigil.Event has %d fields, appendEvent knows 9: update it", n)
	}
	if got := h.counter("vigil_events_accepted_total", ""); got != 1 {
		t.Errorf("vigil_events_accepted_total = %v, want 1", got)
	}

	// Unix seconds for at, a number level, no attrs.
	code, body = h.do("POST", "/v1/events", "", `{"service":"s","level":7,"message":"m","at":1795000000.25}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	if got := decode[eventAnswer](t, body); !got.At.Equal(time.Unix(1795000000, 25e7)) || got.Level != 7 {
		t.Errorf("answer at %v level %v, want Unix 1795000000.25 and 7", got.At, got.Level)
	}
}

func TestEventLossless(t *testing.T) {
	h := newHarness(t, testConfig())
	// As a JSON array, as NDJSON, and one by one over NATS.
	var arr, nd []string
	for i, m := range hostile {
		b, err := json.Marshal(vigil.Event{Service: hostile[(i+1)%len(hostile)], Level: 1, Message: m, Attrs: map[string]string{m: m}})
		if err != nil {
			t.Fatal(err)
		}
		arr = append(arr, string(b))
		nd = append(nd, string(b))
	}
	code, body := h.do("POST", "/v1/events", "", "["+strings.Join(arr, ",")+"]")
	if code != http.StatusAccepted {
		t.Fatalf("POST array = %d %s", code, body)
	}
	code, body = h.do("POST", "/v1/events", "application/x-ndjson", strings.Join(nd, "\n")+"\n")
	if code != http.StatusAccepted {
		t.Fatalf("POST ndjson = %d %s", code, body)
	}
	for _, line := range nd {
		if status, body := h.request(vigil.SubjectInEvent, line); status != "202" {
			t.Fatalf("request vigil.in.event = %s %s", status, body)
		}
	}
	n := len(hostile)
	if got := h.lastSeq(vigil.StreamEvents); got != uint64(3*n) {
		t.Fatalf("events last seq = %d, want %d", got, 3*n)
	}
	for seq := uint64(1); seq <= uint64(3*n); seq++ {
		i := int(seq-1) % n
		e, raw := h.storedEvent(seq)
		if e.Message != hostile[i] || e.Service != hostile[(i+1)%n] || e.Attrs[hostile[i]] != hostile[i] {
			t.Errorf("seq %d: service %q message %q attrs %q, want %q, %q", seq, e.Service, e.Message, e.Attrs, hostile[(i+1)%n], hostile[i])
		}
		if raw.Subject != vigil.EventSubject(hostile[(i+1)%n]) {
			t.Errorf("seq %d: subject %q, want %q", seq, raw.Subject, vigil.EventSubject(hostile[(i+1)%n]))
		}
	}
}

func TestEventIdempotency(t *testing.T) {
	h := newHarness(t, testConfig())
	const single = `{"service":"a","level":1,"message":"once"}`
	_, first := h.do("POST", "/v1/events", "", single, "Idempotency-Key", "k1")
	code, retry := h.do("POST", "/v1/events", "", single, "Idempotency-Key", "k1")
	a1, a2 := decode[eventAnswer](t, first), decode[eventAnswer](t, retry)
	if code != http.StatusAccepted || a1.Duplicate || !a2.Duplicate {
		t.Fatalf("retry = %d, duplicate flags %v, %v; want 202, false, true", code, a1.Duplicate, a2.Duplicate)
	}
	if diff := cmp.Diff(a1.Event, a2.Event); diff != "" {
		t.Errorf("retry answer differs (-first +retry):\n%s", diff)
	}
	_, raw := h.storedEvent(a1.Seq)
	if raw.Header.Get(jetstream.MsgIDHeader) != a1.ID {
		t.Errorf("Nats-Msg-Id = %q, want the event id %q", raw.Header.Get(jetstream.MsgIDHeader), a1.ID)
	}
	const batch = "{\"service\":\"a\",\"message\":\"1\"}\n{\"service\":\"b\",\"message\":\"2\"}\n{\"service\":\"a\",\"message\":\"1\"}\n"
	for i, want := range []string{`{"accepted":3,"duplicates":0}`, `{"accepted":3,"duplicates":3}`} {
		code, body := h.do("POST", "/v1/events", "application/x-ndjson", batch, "Idempotency-Key", "b1")
		if code != http.StatusAccepted || string(body) != want {
			t.Errorf("batch #%d = %d %s, want 202 %s", i, code, body, want)
		}
	}
	if got := h.lastSeq(vigil.StreamEvents); got != 4 {
		t.Errorf("events last seq = %d, want 4 (one single, three of the batch)", got)
	}
}

func TestEventBadInput(t *testing.T) {
	h := newHarness(t, testConfig())
	big := `{"service":"a","message":"` + strings.Repeat("x", 1<<20) + `"}`
	many := "[" + strings.Repeat(`{"service":"a","message":"m"},`, 10000) + `{"service":"a","message":"m"}]`
	tests := []struct {
		name, contentType, body string
		code                    int
		field                   string
	}{
		{"malformed", "", `{"service":`, 400, ""},
		{"empty", "", ``, 400, ""},
		{"missing service", "", `{"message":"m"}`, 400, "service"},
		{"missing message", "", `{"service":"a"}`, 400, "message"},
		{"message too long", "", `{"service":"a","message":"` + strings.Repeat("m", vigil.MaxMessageLen+1) + `"}`, 400, "message"},
		{"invalid utf-8", "", "{\"service\":\"a\",\"message\":\"\xff\"}", 400, "message"},
		{"negative level", "", `{"service":"a","message":"m","level":-1}`, 400, "level"},
		{"fraction level", "", `{"service":"a","message":"m","level":1.5}`, 400, "level"},
		{"unknown level name", "", `{"service":"a","message":"m","level":"loud"}`, 400, "level"},
		{"level too big", "", `{"service":"a","message":"m","level":2147483648}`, 400, "level"},
		{"level object", "", `{"service":"a","message":"m","level":{}}`, 400, "level"},
		{"bad at", "", `{"service":"a","message":"m","at":"yesterday"}`, 400, "at"},
		{"at bool", "", `{"service":"a","message":"m","at":true}`, 400, "at"},
		{"alert string", "", `{"service":"a","message":"m","alert":"yes"}`, 400, "alert"},
		{"attrs array", "", `{"service":"a","message":"m","attrs":["x"]}`, 400, "attrs"},
		{"attr number", "", `{"service":"a","message":"m","attrs":{"n":1}}`, 400, "attrs.n"},
		{"empty attr key", "", `{"service":"a","message":"m","attrs":{"":"v"}}`, 400, "attrs"},
		{"unknown field", "", `{"service":"a","message":"m","received":"2026-01-01T00:00:00Z"}`, 400, "received"},
		{"seq is the server's", "", `{"service":"a","message":"m","seq":1}`, 400, "seq"},
		{"bad item in batch", "", `[{"service":"a","message":"m"},{"service":"b","message":"m"},{"service":"c","message":"m"},{"service":"d","message":"m","level":-3}]`, 400, "[3].level"},
		{"bad ndjson line", "application/x-ndjson", "{\"service\":\"a\",\"message\":\"m\"}\n{\"service\":\"b\"}\n", 400, "[1].message"},
		{"body over the limit", "", big, 413, ""},
		{"batch over the limit", "", many, 413, ""},
		{"text", "text/plain", `{"service":"a","message":"m"}`, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := h.do("POST", "/v1/events", tt.contentType, tt.body)
			if code != tt.code {
				t.Errorf("POST %.60s = %d %s, want %d", tt.body, code, body, tt.code)
			}
			e := decode[struct{ Error, Field string }](t, body)
			if e.Field != tt.field || e.Error == "" {
				t.Errorf("POST %.60s error = %q field %q, want field %q", tt.body, e.Error, e.Field, tt.field)
			}
		})
	}
	if got := h.lastSeq(vigil.StreamEvents); got != 0 {
		t.Errorf("events last seq = %d after rejected requests, want 0 (nothing published)", got)
	}
	want := map[string]float64{}
	for _, tt := range tests {
		want[map[int]string{400: "invalid", 413: "too_large", 415: "media_type"}[tt.code]]++
	}
	for reason, n := range want {
		if got := h.counter("vigil_events_rejected_total", reason); got != n {
			t.Errorf("vigil_events_rejected_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}
	// The same answers over NATS.
	status, body := h.request(vigil.SubjectInEvent, `[{"service":"a","message":"m"},{"service":"b","message":"m","level":"x"}]`)
	if e := decode[struct{ Error, Field string }](t, body); status != "400" || e.Field != "[1].level" {
		t.Errorf("vigil.in.event bad batch = %s %s, want 400 naming [1].level", status, body)
	}
}

func TestEventAlert(t *testing.T) {
	h := newHarness(t, testConfig())
	owner := `{"type":"webhook","target":"https://example.com/hook"}`
	if code, body := h.do("POST", "/v1/pulses", "", `{"service":"owned","next_in":60,"owner":`+owner+`}`); code != http.StatusAccepted {
		t.Fatalf("POST pulse = %d %s", code, body)
	}
	code, body := h.do("POST", "/v1/events", "", `{"service":"owned","level":"critical","message":"disk; \"full\"","alert":true}`, "Idempotency-Key", "e1")
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	ev := decode[eventAnswer](t, body)
	if !ev.Alert {
		t.Errorf("answer alert = false, want true")
	}
	// A batch: one alerting event of a service that never pulsed, one quiet.
	code, body = h.do("POST", "/v1/events", "", `[{"service":"stranger","message":"m2","level":3,"alert":true},{"service":"owned","message":"quiet"}]`, "Idempotency-Key", "e2")
	if code != http.StatusAccepted {
		t.Fatalf("POST batch = %d %s", code, body)
	}
	if got := h.lastSeq(vigil.StreamAlerts); got != 2 {
		t.Fatalf("alerts last seq = %d, want 2", got)
	}
	ctx := context.Background()
	alert := func(seq uint64) (vigil.Alert, string, string) {
		m, err := h.assets.Alerts.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return decode[vigil.Alert](t, m.Data), m.Subject, m.Header.Get(jetstream.MsgIDHeader)
	}
	a, subj, id := alert(1)
	want := vigil.Alert{
		ID: "event:" + ev.ID, Kind: vigil.AlertManual, Service: "owned", Title: "owned", Message: `disk; "full"`,
		Level: vigil.LevelCritical, Owner: &vigil.Owner{Type: "webhook", Target: "https://example.com/hook"}, Origin: "event", At: t0,
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("alert of an owned service (-want +got):\n%s", diff)
	}
	if subj != vigil.AlertSubject(vigil.AlertManual, "owned") || id != want.ID {
		t.Errorf("alert subject %q msg id %q, want %q %q", subj, id, vigil.AlertSubject(vigil.AlertManual, "owned"), want.ID)
	}
	a, _, _ = alert(2)
	if a.Owner != nil || a.Service != "stranger" || a.Level != 3 || a.Message != "m2" {
		t.Errorf("alert of a service without a record = %+v, want no owner (default route)", a)
	}
	// Retries raise nothing twice.
	h.do("POST", "/v1/events", "", `{"service":"owned","level":"critical","message":"disk; \"full\"","alert":true}`, "Idempotency-Key", "e1")
	h.do("POST", "/v1/events", "", `[{"service":"stranger","message":"m2","level":3,"alert":true},{"service":"owned","message":"quiet"}]`, "Idempotency-Key", "e2")
	if got := h.lastSeq(vigil.StreamAlerts); got != 2 {
		t.Errorf("alerts last seq after retries = %d, want 2", got)
	}
	if got := h.counter("vigil_manual_alerts_total", ""); got != 2 {
		t.Errorf("vigil_manual_alerts_total = %v, want 2", got)
	}
}

func TestEventNATS(t *testing.T) {
	h := newHarness(t, testConfig())
	status, body := h.request(vigil.SubjectInEvent, `{"service":"n","level":"info","message":"over nats"}`, "Idempotency-Key", "n1")
	if status != "202" {
		t.Fatalf("vigil.in.event = %s %s, want 202", status, body)
	}
	got := decode[eventAnswer](t, body)
	if got.Service != "n" || got.Message != "over nats" || got.Seq != 1 {
		t.Errorf("answer = %+v", got)
	}
	status, body = h.request(vigil.SubjectInEvent, "{\"service\":\"n\",\"message\":\"1\"}\n{\"service\":\"n\",\"message\":\"2\"}")
	if status != "202" || string(body) != `{"accepted":2,"duplicates":0}` {
		t.Errorf("vigil.in.event NDJSON = %s %s", status, body)
	}
	if got := h.counter("vigil_events_accepted_total", ""); got != 3 {
		t.Errorf("vigil_events_accepted_total = %v, want 3", got)
	}
}

// eventBody returns an event JSON for one of 1,000 services.
func eventBody(n uint64) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"service":"svc-`...)
	b = strconv.AppendUint(b, n%1000, 10)
	b = append(b, `","level":2,"message":"request `...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, ` took 1.2 s; retrying \"upstream\"","attrs":{"host":"bench"}}`...)
}

func reportEvents(b *testing.B, n int64) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHTTPEvent posts one event per request from 16 × GOMAXPROCS
// concurrent clients, each answered after its PubAck (goal ≥ 24,000/s).
//
//	go test -run XXX -bench 'HTTPEvent' -benchtime 3s ./services/ingest/
func BenchmarkHTTPEvent(b *testing.B) {
	h := newHarness(b, testConfig())
	c := benchClient()
	url := h.srv.URL + "/v1/events"
	var seq atomic.Uint64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, c, url, eventBody(seq.Add(1)))
		}
	})
	reportEvents(b, int64(b.N))
}

// BenchmarkHTTPEventBatch100 posts JSON arrays of 100 events from 4 ×
// GOMAXPROCS concurrent clients (goal ≥ 100,000 events/s).
func BenchmarkHTTPEventBatch100(b *testing.B) {
	h := newHarness(b, testConfig())
	c := benchClient()
	url := h.srv.URL + "/v1/events"
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
				body = append(body, eventBody(seq.Add(1))...)
			}
			post(b, c, url, append(body, ']'))
		}
	})
	reportEvents(b, int64(b.N)*100)
}
