package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/api"
)

// sseMsg is one dispatched Server-Sent Event; id-only messages have no
// event and no data.
type sseMsg struct{ event, id, data string }

// sse is a test client of GET /v1/stream.
type sse struct {
	t      *testing.T
	resp   *http.Response
	msgs   chan sseMsg
	cancel context.CancelFunc
}

// openSSE connects to base+path with Last-Event-ID lastID ("" for none)
// and parses the stream in the background.
func openSSE(t *testing.T, base, path, lastID string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET %s = %d %s, want 200 text/event-stream", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{t: t, resp: resp, msgs: make(chan sseMsg, 1000), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sse) read() {
	defer close(s.msgs)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(nil, 1<<20)
	var m sseMsg
	seen := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if seen {
				s.msgs <- m
			}
			m, seen = sseMsg{}, false
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "event: "):
			m.event, seen = line[7:], true
		case strings.HasPrefix(line, "id: "):
			m.id, seen = line[4:], true
		case strings.HasPrefix(line, "data: "):
			m.data, seen = line[6:], true
		default:
			s.t.Errorf("unexpected SSE line %q", line)
		}
	}
}

func (s *sse) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next message, failing after 10 s.
func (s *sse) next() sseMsg {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return m
	case <-time.After(10 * time.Second):
		s.t.Fatal("no message within 10 s")
	}
	return sseMsg{}
}

// nextData returns the next message that carries data.
func (s *sse) nextData() sseMsg {
	s.t.Helper()
	for {
		if m := s.next(); m.data != "" {
			return m
		}
	}
}

func TestStreamResume(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	e.event(t, vigil.Event{Service: "before", Message: "not sent: before the stream", Received: t0})
	s := openSSE(t, e.srv.URL, "/v1/stream?types=events", "")
	if m := s.next(); m.id != "e:1" || m.data != "" {
		t.Fatalf("first message = %+v, want the id e:1 of the start and no data", m)
	}
	var want []vigil.Event
	for i := range 5 {
		want = append(want, e.event(t, vigil.Event{Service: "svc " + hostile[i], Level: 2, Message: hostile[i], Received: t0}))
	}
	var lastID string
	for i := range 3 {
		m := s.nextData()
		var got vigil.Event
		if err := json.Unmarshal([]byte(m.data), &got); err != nil {
			t.Fatal(err)
		}
		if m.event != "events" || m.id != fmt.Sprintf("e:%d", want[i].Seq) || got.Message != want[i].Message || got.Service != want[i].Service || got.Seq != want[i].Seq {
			t.Fatalf("message %d = %+v, want event %+v", i, m, want[i])
		}
		lastID = m.id
	}
	s.close()
	// While disconnected: more events.
	for i := 5; i < 7; i++ {
		want = append(want, e.event(t, vigil.Event{Service: "svc", Level: 2, Message: hostile[i], Received: t0}))
	}
	s = openSSE(t, e.srv.URL, "/v1/stream?types=events", lastID)
	for i := 3; i < len(want); i++ {
		m := s.nextData()
		var got vigil.Event
		if err := json.Unmarshal([]byte(m.data), &got); err != nil {
			t.Fatal(err)
		}
		if got.Seq != want[i].Seq || got.Message != want[i].Message {
			t.Fatalf("after resume, message %d = seq %d %q, want seq %d %q (nothing lost, nothing twice)", i, got.Seq, got.Message, want[i].Seq, want[i].Message)
		}
	}
	select {
	case m := <-s.msgs:
		if m.data != "" {
			t.Errorf("extra message after resume: %+v", m)
		}
	default:
	}
}

func TestStreamTypesAndFilters(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	s := openSSE(t, e.srv.URL, "/v1/stream?service=^db&level=error&message=disk", "")
	if m := s.next(); m.id != "e:0,a:0,s:0,d:0" {
		t.Fatalf("first id = %q, want every source at 0", m.id)
	}
	e.event(t, vigil.Event{Service: "web", Level: 4, Message: "disk full", Received: t0})       // other service
	e.event(t, vigil.Event{Service: "db.backup", Level: 1, Message: "disk full", Received: t0}) // level too low
	e.event(t, vigil.Event{Service: "db.backup", Level: 3, Message: "cpu hot", Received: t0})   // message
	ev := e.event(t, vigil.Event{Service: "db.backup", Level: 3, Message: "DISK full", Received: t0})
	m := s.nextData()
	if m.event != "events" || m.id != fmt.Sprintf("e:%d,a:0,s:0,d:0", ev.Seq) || !strings.Contains(m.data, `"DISK full"`) {
		t.Errorf("event message = %+v, want the DISK full event at seq %d", m, ev.Seq)
	}
	e.alert(t, vigil.Alert{ID: "x", Kind: vigil.AlertDown, Service: "web", Title: "t", Message: "disk", Level: 4, At: t0})
	al := e.alert(t, vigil.Alert{ID: "y", Kind: vigil.AlertDown, Service: "db.backup", Title: "t", Message: "disk gone", Level: 4, At: t0})
	m = s.nextData()
	if m.event != "alerts" || m.id != fmt.Sprintf("e:%d,a:%d,s:0,d:0", ev.Seq, al.Seq) {
		t.Errorf("alert message = %+v, want the db alert at seq %d", m, al.Seq)
	}
	e.verdict(t, "db.backup", vigil.Verdict{Service: "db.backup", Status: vigil.StatusDown, Since: t0})
	m = s.nextData()
	var v vigil.Verdict
	if err := json.Unmarshal([]byte(m.data), &v); err != nil || m.event != "status" || v.Status != vigil.StatusDown || v.Service != "db.backup" || !strings.HasSuffix(m.id, ",s:1,d:0") {
		t.Errorf("status message = %+v, want db.backup down", m)
	}
	attempt := []byte(`{"service":"db.backup","channel":"mail","status":"sent","attempt":1}`)
	if _, err := e.assets.JS.Publish(context.Background(), vigil.AttemptSubject("mail", "db.backup"), attempt); err != nil {
		t.Fatal(err)
	}
	m = s.nextData()
	if m.event != "deliveries" || m.data != string(attempt) || !strings.HasSuffix(m.id, ",d:1") {
		t.Errorf("delivery message = %+v, want the attempt as written", m)
	}

	// service_exact filters on the server; other services never arrive.
	s2 := openSSE(t, e.srv.URL, "/v1/stream?types=events,status&service_exact=web", "")
	if m := s2.next(); m.id != fmt.Sprintf("e:%d,s:1", ev.Seq) {
		t.Fatalf("first id = %q", m.id)
	}
	e.event(t, vigil.Event{Service: "db.backup", Level: 3, Message: "x", Received: t0})
	w := e.event(t, vigil.Event{Service: "web", Level: 0, Message: "web event", Received: t0})
	if m := s2.nextData(); !strings.Contains(m.data, `"web event"`) || !strings.HasPrefix(m.id, fmt.Sprintf("e:%d,", w.Seq)) {
		t.Errorf("service_exact stream message = %+v, want the web event", m)
	}
}

// stuckWriter is a ResponseWriter whose client stopped reading: after the
// first write, every write blocks until its write deadline and then fails
// as a network write would.
type stuckWriter struct {
	mu       sync.Mutex
	h        http.Header
	deadline time.Time
	writes   int
	started  chan struct{}
}

func (w *stuckWriter) Header() http.Header { return w.h }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) FlushError() error   { return nil }

func (w *stuckWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = t
	return nil
}

func (w *stuckWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n, d := w.writes, w.deadline
	w.mu.Unlock()
	if n == 1 {
		close(w.started)
		return len(b), nil
	}
	<-time.After(time.Until(d)) // a full socket buffer, until the deadline
	return 0, os.ErrDeadlineExceeded
}

func TestStreamDropsSlowClient(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.StreamBuffer = 2
		c.StreamSlowTimeout = 50 * time.Millisecond
	})
	e.run(t)
	rt := chi.NewRouter()
	e.role.Routes(rt)
	w := &stuckWriter{h: http.Header{}, started: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rt.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/stream?types=events", nil))
	}()
	<-w.started
	if got := gauge(t, e, "vigil_api_stream_clients"); got != 1 {
		t.Errorf("vigil_api_stream_clients = %v with one stream, want 1", got)
	}
	for i := range 20 {
		e.event(t, vigil.Event{Service: "s", Message: fmt.Sprint("m", i), Received: t0})
	}
	<-done // dropped: the handler returned although the client never read
	if got := counter(t, e, "vigil_api_stream_dropped_total"); got != 1 {
		t.Errorf("vigil_api_stream_dropped_total = %v, want 1", got)
	}
	if got := gauge(t, e, "vigil_api_stream_clients"); got != 0 {
		t.Errorf("vigil_api_stream_clients = %v after the drop, want 0", got)
	}
}

func TestStreamEndsOnShutdown(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	rt := chi.NewRouter()
	e.role.Routes(rt)
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	s := openSSE(t, "http://"+ln.Addr().String(), "/v1/stream", "")
	s.next()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown waits for active requests; the stream must end by itself.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want nil (the live stream ended)", err)
	}
	for m := range s.msgs {
		if m.data != "" {
			t.Errorf("message after shutdown: %+v", m)
		}
	}
}

func TestStreamLimit(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.MaxStreams = 1 })
	e.run(t)
	openSSE(t, e.srv.URL, "/v1/stream", "").next()
	code, b := e.get(t, "/v1/stream")
	if code != http.StatusServiceUnavailable {
		t.Errorf("second stream over MaxStreams 1 = %d %s, want 503", code, b)
	}
}

func metricValue(t *testing.T, e *env, name string) (float64, bool) {
	t.Helper()
	fams, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func gauge(t *testing.T, e *env, name string) float64 {
	t.Helper()
	v, _ := metricValue(t, e, name)
	return v
}

func counter(t *testing.T, e *env, name string) float64 { return gauge(t, e, name) }
