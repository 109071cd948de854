package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/client"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
)

// hostile are the strings watchTower's CSV store mangled; each must come
// back byte for byte through ingest, the stream, the index and the API.
var hostile = []string{
	`"leading quote`, `a;b;c`, "two\nlines\r\nand a\ttab", `say "hi"; 'bye'`, `\backslash\ and \"escaped\"`,
	"Größe ✓ 😀 \u2028\u2029", "<script>&amp;</script>", "nul \x00 bell \a", `;"`, " spaced ",
}

func TestEventsAgainstRealServer(t *testing.T) {
	c := newClient(t, stacktest.Serve(t))
	ctx := context.Background()
	var sent []vigil.Event
	for i, m := range hostile {
		e := vigil.Event{
			Service: hostile[(i+3)%len(hostile)], Level: vigil.Level(i % 5), Message: m,
			At:    time.Date(2026, 11, 21, 12, 0, i, 0, time.FixedZone("", 2*3600)),
			Attrs: map[string]string{"raw": m, m: "key"},
		}
		got, err := c.Event(ctx, e, client.WithIdempotencyKey(fmt.Sprint("ev-", i)))
		if err != nil {
			t.Fatalf("Event(%q): %v", m, err)
		}
		if got.Message != m || got.Service != e.Service || got.Seq == 0 || got.ID == "" || got.Received.IsZero() {
			t.Errorf("Event(%q) = %+v, want it stored as sent", m, got)
		}
		sent = append(sent, *got)
	}
	n, err := c.EventBatch(ctx, []vigil.Event{{Service: "batch", Message: "one"}, {Service: "batch", Message: "two", Level: 4}})
	if n != 2 || err != nil {
		t.Fatalf("EventBatch = %d, %v, want 2", n, err)
	}
	var got []vigil.Event
	bustest.Eventually(t, func() error {
		p, err := c.Events(ctx, client.EventQuery{Paging: client.Paging{Limit: 1000, Ascending: true}})
		if err != nil {
			return err
		}
		if len(p.Items) != len(sent)+2 {
			return fmt.Errorf("%d events listed, want %d", len(p.Items), len(sent)+2)
		}
		got = p.Items[:len(sent)]
		return nil
	})
	if diff := cmp.Diff(sent, got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("events read back (-sent +listed):\n%s", diff)
	}
	// Filters, with the hostile strings as exact patterns.
	for i, m := range hostile {
		p, err := c.Events(ctx, client.EventQuery{Filter: client.Filter{
			ServiceExact: []string{sent[i].Service}, Message: "^" + regexpQuote(m) + "$",
		}})
		if err != nil {
			t.Fatalf("Events(message %q): %v", m, err)
		}
		if len(p.Items) != 1 || p.Items[0].Seq != sent[i].Seq {
			t.Errorf("Events(service_exact %q, message %q) = %+v, want only seq %d", sent[i].Service, m, p.Items, sent[i].Seq)
		}
	}
	p, err := c.Events(ctx, client.EventQuery{Filter: client.Filter{Service: "^BATCH$", Level: vigil.LevelCritical}})
	if err != nil || len(p.Items) != 1 || p.Items[0].Message != "two" {
		t.Errorf("Events(service ^BATCH$, level critical) = %+v, %v, want the one critical", p, err)
	}
	_, err = c.Events(ctx, client.EventQuery{Filter: client.Filter{Message: "("}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Field != "message" || !errors.Is(err, vigil.ErrInvalid) {
		t.Errorf("Events(message \"(\") = %v, want a 400 naming message", err)
	}

	// alert: true raises a manual alert, listed by GET /v1/alerts.
	if _, err := c.Event(ctx, vigil.Event{Service: "db.backup", Level: vigil.LevelError, Message: "disk; \"full\"", Alert: true}); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, func() error {
		p, err := c.Alerts(ctx, client.AlertQuery{Kinds: []vigil.AlertKind{vigil.AlertManual}, Filter: client.Filter{ServiceExact: []string{"db.backup"}}})
		if err != nil {
			return err
		}
		if len(p.Items) != 1 || p.Items[0].Message != `disk; "full"` || p.Items[0].Origin != "event" {
			return fmt.Errorf("alerts = %+v, want the event's", p.Items)
		}
		return nil
	})
	h, err := c.ServiceHistory(ctx, "db.backup", client.Paging{})
	if err != nil || len(h.Items) != 0 {
		t.Errorf("ServiceHistory(db.backup) = %+v, %v, want no flips (a manual alert is none)", h, err)
	}
}

func TestTailEventsAgainstRealServer(t *testing.T) {
	c := newClient(t, stacktest.Serve(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan vigil.Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- c.TailEvents(ctx, client.Filter{ServiceExact: []string{"tailed"}, Level: vigil.LevelError}, func(e vigil.Event) error {
			got <- e
			return nil
		})
	}()
	// The tail starts at the end of the stream, so keep sending until the
	// first one arrives, then check the order of the rest.
	bustest.Eventually(t, func() error {
		if _, err := c.Event(context.Background(), vigil.Event{Service: "tailed", Level: 3, Message: "hello"}); err != nil {
			return err
		}
		select {
		case <-got:
			return nil
		default:
			return errors.New("nothing tailed yet")
		}
	})
	for len(got) > 0 {
		<-got
	}
	for _, e := range []vigil.Event{
		{Service: "other", Level: 4, Message: "other service"},
		{Service: "tailed", Level: 1, Message: "too low"},
		{Service: "tailed", Level: 4, Message: hostile[0]},
	} {
		if _, err := c.Event(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-got:
		if e.Message != hostile[0] && e.Message != "hello" {
			t.Errorf("tailed %+v, want only tailed events of level >= 3", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event tailed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("TailEvents after cancel = %v, want nil", err)
	}
}

// sseServer enforces GET /v1/stream's contract for the client: each
// connection must resume after the last id the client saw.
type sseServer struct {
	mu      sync.Mutex
	lastIDs []string
	conns   [][]string // what each connection sends, then it closes
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.lastIDs)
	s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
	s.mu.Unlock()
	if r.URL.Query().Get("types") != "events" || r.URL.Query().Get("service") != "db" {
		http.Error(w, `{"error":"bad query"}`, http.StatusBadRequest)
		return
	}
	if n >= len(s.conns) {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, chunk := range s.conns[n] {
		_, _ = io.WriteString(w, chunk)
	}
}

func TestStreamReconnectsWithLastEventID(t *testing.T) {
	s := &sseServer{conns: [][]string{
		{
			"retry: 1\nid: e:0\n\n", "event: events\nid: e:1\ndata: {\"service\":\"db\",\"message\":\"one\",\"seq\":1}\n\n", ": heartbeat\n\n",
			"event: events\nid: e:2\ndata: {\"service\":\"db\",\n", "data: \"message\":\"two\",\"seq\":2}\n\n",
		},
		{"id: e:2\n\n"}, // a reconnect that only says where it starts
		{"event: events\nid: e:3\ndata: {\"service\":\"db\",\"message\":\"three\",\"seq\":3}\n\n"},
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newClient(t, srv.URL)
	var msgs []string
	stop := errors.New("enough")
	err := c.TailEvents(context.Background(), client.Filter{Service: "db"}, func(e vigil.Event) error {
		msgs = append(msgs, fmt.Sprint(e.Seq, e.Message))
		if e.Seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("TailEvents = %v, want the handler's error", err)
	}
	if diff := cmp.Diff([]string{"1one", "2two", "3three"}, msgs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	s.mu.Lock()
	ids := s.lastIDs
	s.mu.Unlock()
	if diff := cmp.Diff([]string{"", "e:2", "e:2"}, ids); diff != "" {
		t.Errorf("Last-Event-ID per connection (-want +got):\n%s", diff)
	}

	// A bad filter is not retried.
	err = c.Stream(context.Background(), client.StreamQuery{Types: []string{"events"}}, func(client.StreamMessage) error { return nil })
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Errorf("Stream with a refused query = %v, want the 400", err)
	}
}

// regexpQuote escapes s for use in a regular expression.
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
