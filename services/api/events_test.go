package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// hostile messages must come back byte for byte.
var hostile = []string{
	`"leading quote`, `a;b;c`, "two\nlines\r\n\ttab", `say "hi"; bye`, "Größe ✓ 😀 \u2028", "<b>&amp;</b>", "nul \x00",
}

// event stores e in VIGIL_EVENTS as ingest would and returns it with Seq.
func (e *env) event(t *testing.T, ev vigil.Event) vigil.Event {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.assets.JS.Publish(context.Background(), vigil.EventSubject(ev.Service), b)
	if err != nil {
		t.Fatalf("publish event: %v", err)
	}
	ev.Seq = ack.Sequence
	return ev
}

// alert stores a in VIGIL_ALERTS and returns it with Seq.
func (e *env) alert(t *testing.T, a vigil.Alert) vigil.Alert {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.assets.JS.Publish(context.Background(), vigil.AlertSubject(a.Kind, a.Service), b)
	if err != nil {
		t.Fatalf("publish alert: %v", err)
	}
	a.Seq = ack.Sequence
	return a
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// listOf GETs path and decodes a page, failing on anything but 200.
func listOf[T any](t *testing.T, e *env, path string) page[T] {
	t.Helper()
	code, b := e.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", path, code, b)
	}
	var p page[T]
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if p.Items == nil {
		t.Fatalf("GET %s: items is null, want a list", path)
	}
	return p
}

// all follows the cursors of path to the end.
func all[T any](t *testing.T, e *env, path string) (items []T, pages int) {
	t.Helper()
	cursor := ""
	for {
		sep := "?"
		if u, _ := url.Parse(path); u.RawQuery != "" {
			sep = "&"
		}
		p := path
		if cursor != "" {
			p += sep + "cursor=" + url.QueryEscape(cursor)
		}
		pg := listOf[T](t, e, p)
		items = append(items, pg.Items...)
		pages++
		if pg.NextCursor == "" {
			return items, pages
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		cursor = pg.NextCursor
	}
}

func seqs[T any](items []T, seq func(T) uint64) []uint64 {
	var out []uint64
	for _, it := range items {
		out = append(out, seq(it))
	}
	return out
}

func evSeq(e vigil.Event) uint64 { return e.Seq }

func TestEventsList(t *testing.T) {
	e := newEnv(t)
	var want []vigil.Event // oldest first
	add := func(ev vigil.Event) { want = append(want, e.event(t, ev)) }
	services := []string{"db.backup", "Web", "web-2", "my service", "_x"}
	old := e.event(t, vigil.Event{Service: "db.backup", Level: 4, Message: "two days ago", Received: t0.Add(-48 * time.Hour)})
	for i := range 60 {
		ev := vigil.Event{
			Service: services[i%len(services)], Level: vigil.Level(i % 5), Message: fmt.Sprintf("event %02d: %s", i, hostile[i%len(hostile)]),
			Received: t0.Add(time.Duration(i-60) * time.Minute), ID: "id" + strconv.Itoa(i),
		}
		if i%7 == 0 {
			ev.At = t0.Add(-time.Hour).In(time.FixedZone("", -5*3600))
			ev.Attrs = map[string]string{"k": hostile[i%len(hostile)], "region": "eu"}
		}
		if i == 30 {
			e.run(t) // half indexed while catching up, half live
		}
		add(ev)
	}
	newest := slices.Clone(want)
	slices.Reverse(newest)
	bustest.Eventually(t, func() error {
		if n := len(listOf[vigil.Event](t, e, "/v1/events?limit=1000").Items); n != len(want) {
			return fmt.Errorf("%d events listed, want %d", n, len(want))
		}
		return nil
	})

	// Newest first by default, the last 24 h only, lossless.
	got, pages := all[vigil.Event](t, e, "/v1/events?limit=7")
	if diff := cmp.Diff(newest, got); diff != "" {
		t.Errorf("GET /v1/events over all pages (-want +got):\n%s", diff)
	}
	if pages != 9 {
		t.Errorf("%d pages of 7 for 60 events, want 9", pages)
	}
	got, _ = all[vigil.Event](t, e, "/v1/events?order=asc&limit=25")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order=asc (-want +got):\n%s", diff)
	}
	filter := func(keep func(vigil.Event) bool) []uint64 {
		var out []uint64
		for _, ev := range newest {
			if keep(ev) {
				out = append(out, ev.Seq)
			}
		}
		return out
	}
	from48 := url.QueryEscape(t0.Add(-49 * time.Hour).Format(time.RFC3339))
	tests := []struct {
		query string
		want  []uint64
	}{
		{"service=^web$", filter(func(ev vigil.Event) bool { return ev.Service == "Web" })},
		{"service=web", filter(func(ev vigil.Event) bool { return ev.Service == "Web" || ev.Service == "web-2" })},
		{"service_exact=Web", filter(func(ev vigil.Event) bool { return ev.Service == "Web" })},
		{"service_exact=web", nil},
		{"service_exact=Web&service_exact=_x", filter(func(ev vigil.Event) bool { return ev.Service == "Web" || ev.Service == "_x" })},
		{"service=.&service_exact=Web", filter(func(ev vigil.Event) bool { return ev.Service == "Web" })},
		{"service=" + url.QueryEscape("^my serv"), filter(func(ev vigil.Event) bool { return ev.Service == "my service" })},
		{"message=" + url.QueryEscape(`SAY "HI"; BYE`), filter(func(ev vigil.Event) bool { return ev.Message[10:] == hostile[3] })},
		{"message=" + url.QueryEscape(`^event 1\d:`), filter(func(ev vigil.Event) bool { return ev.Message[6] == '1' })},
		{"message=" + url.QueryEscape("\n"), filter(func(ev vigil.Event) bool { return ev.Message[10:] == hostile[2] })},
		{"level=3", filter(func(ev vigil.Event) bool { return ev.Level >= 3 })},
		{"level=error", filter(func(ev vigil.Event) bool { return ev.Level >= 3 })},
		{"level=critical&service=db", filter(func(ev vigil.Event) bool { return ev.Level >= 4 && ev.Service == "db.backup" })},
		{"from=" + url.QueryEscape(t0.Add(-10*time.Minute).Format(time.RFC3339)), filter(func(ev vigil.Event) bool { return !ev.Received.Before(t0.Add(-10 * time.Minute)) })},
		{"to=" + strconv.FormatInt(t0.Add(-50*time.Minute).Unix(), 10), filter(func(ev vigil.Event) bool { return !ev.Received.After(t0.Add(-50 * time.Minute)) })},
		{
			"from=" + strconv.FormatInt(t0.Add(-20*time.Minute).Unix(), 10) + ".0&to=" + url.QueryEscape(t0.Add(-20*time.Minute).Format(time.RFC3339Nano)),
			filter(func(ev vigil.Event) bool { return ev.Received.Equal(t0.Add(-20 * time.Minute)) }),
		},
		{"from=" + from48 + "&service_exact=db.backup&level=4", append(filter(func(ev vigil.Event) bool { return ev.Level >= 4 && ev.Service == "db.backup" }), old.Seq)},
		{"service=nothing-matches", nil},
	}
	for _, tt := range tests {
		got, _ := all[vigil.Event](t, e, "/v1/events?limit=4&"+tt.query)
		if diff := cmp.Diff(tt.want, seqs(got, evSeq)); diff != "" {
			t.Errorf("GET /v1/events?%s (-want +got seqs):\n%s", tt.query, diff)
		}
	}
}

func TestListErrors(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	tests := []struct {
		path  string
		field string
	}{
		{"/v1/events?service=(", "service"},
		{"/v1/events?message=" + url.QueryEscape("[a-"), "message"},
		{"/v1/events?message=" + url.QueryEscape(`\p{Nope}`), "message"},
		{"/v1/events?level=loud", "level"},
		{"/v1/events?level=-1", "level"},
		{"/v1/events?from=yesterday", "from"},
		{"/v1/events?to=2026-13-01T00:00:00Z", "to"},
		{"/v1/events?from=NaN", "from"},
		{"/v1/events?from=2026-11-21T12:00:00Z&to=2026-11-21T11:00:00Z", "from"},
		{"/v1/events?limit=0", "limit"},
		{"/v1/events?limit=1001", "limit"},
		{"/v1/events?cursor=abc", "cursor"},
		{"/v1/events?order=newest", "order"},
		{"/v1/events?kind=down", "kind"},
		{"/v1/events?servce=x", "servce"},
		{"/v1/events?service=a&service=b", "service"},
		{"/v1/events?service_exact=", "service_exact"},
		{"/v1/alerts?kind=down,bogus", "kind"},
		{"/v1/alerts?level=x", "level"},
		{"/v1/services/a/history?service=x", "service"},
		{"/v1/services/a/history?from=x", "from"},
		{"/v1/stream?types=events,logs", "types"},
		{"/v1/stream?limit=5", "limit"},
		{"/v1/stream?last_event_id=x:1", "Last-Event-ID"},
	}
	for _, tt := range tests {
		code, b := e.get(t, tt.path)
		var body struct{ Error, Field string }
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("GET %s: body %s is not JSON: %v", tt.path, b, err)
			continue
		}
		if code != http.StatusBadRequest || body.Field != tt.field || body.Error == "" {
			t.Errorf("GET %s = %d %s, want 400 naming %q", tt.path, code, b, tt.field)
		}
	}
}

func TestEventsCatchingUp(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/v1/events", "/v1/alerts", "/v1/services/x/history"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s before Run = %d (Retry-After %q), want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

func TestAlertsAndHistory(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	owner := &vigil.Owner{Type: vigil.ChannelMail, Target: "ops@example.com"}
	var want []vigil.Alert // oldest first
	add := func(a vigil.Alert) { want = append(want, e.alert(t, a)) }
	add(vigil.Alert{ID: "down:db:1", Kind: vigil.AlertDown, Service: "db.backup", Title: "db.backup is down", Level: vigil.LevelCritical, Owner: owner, At: t0.Add(-3 * time.Hour), DownSeq: 1})
	add(vigil.Alert{ID: "manual:1", Kind: vigil.AlertManual, Service: "web", Title: "t", Message: `disk "full"; now`, Level: 2, At: t0.Add(-150 * time.Minute)})
	add(vigil.Alert{ID: "recovered:db:1", Kind: vigil.AlertRecovered, Service: "db.backup", Title: "db.backup recovered", Level: vigil.LevelInfo, At: t0.Add(-2 * time.Hour), DownSince: t0.Add(-3 * time.Hour), DownSeq: 1})
	add(vigil.Alert{ID: "gap:1", Kind: vigil.AlertGap, Title: "gap", At: t0.Add(-90 * time.Minute), GapFrom: t0.Add(-100 * time.Minute), GapTo: t0.Add(-90 * time.Minute), Services: []string{"a", "b"}})
	add(vigil.Alert{ID: "down:web:5", Kind: vigil.AlertDown, Service: "web", Title: "web is down", Level: vigil.LevelCritical, At: t0.Add(-time.Hour), DownSeq: 5})
	add(vigil.Alert{ID: "down:db:9", Kind: vigil.AlertDown, Service: "db.backup", Title: "db.backup is down", Level: vigil.LevelCritical, At: t0.Add(-30 * time.Hour), DownSeq: 9})
	add(vigil.Alert{ID: "manual:2", Kind: vigil.AlertManual, Title: "no service", Message: "m", At: t0})
	bustest.Eventually(t, func() error {
		if n := len(listOf[vigil.Alert](t, e, "/v1/alerts").Items); n != len(want) {
			return fmt.Errorf("%d alerts, want %d", n, len(want))
		}
		return nil
	})
	pick := func(idx ...int) []vigil.Alert {
		var out []vigil.Alert
		for _, i := range idx {
			out = append(out, want[i])
		}
		return out
	}
	tests := []struct {
		path string
		want []vigil.Alert
	}{
		{"/v1/alerts", pick(6, 5, 4, 3, 2, 1, 0)},
		{"/v1/alerts?order=asc&limit=2", pick(0, 1, 2, 3, 4, 5, 6)},
		{"/v1/alerts?kind=down", pick(5, 4, 0)},
		{"/v1/alerts?kind=down,recovered&service=^db", pick(5, 2, 0)},
		{"/v1/alerts?service_exact=web&level=critical", pick(4)},
		{"/v1/alerts?message=" + url.QueryEscape(`"FULL"`), pick(1)},
		{"/v1/alerts?kind=gap", pick(3)},
		{"/v1/alerts?from=" + url.QueryEscape(t0.Add(-2*time.Hour).Format(time.RFC3339)), pick(6, 4, 3, 2)},
		{"/v1/services/db.backup/history", pick(5, 2, 0)},
		{"/v1/services/db.backup/history?order=asc&limit=1", pick(0, 2, 5)},
		{"/v1/services/db.backup/history?to=" + url.QueryEscape(t0.Add(-150*time.Minute).Format(time.RFC3339)), pick(5, 0)},
		{"/v1/services/web/history", pick(4)},
		{"/v1/services/never%20flipped/history", nil},
	}
	for _, tt := range tests {
		got, _ := all[vigil.Alert](t, e, tt.path)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", tt.path, diff)
		}
	}
}
