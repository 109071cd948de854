package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/client"
)

// seen is one request as the test server received it.
type seen struct {
	Method, URI, ContentType, Accept, Auth, IdemKey string
	Body                                            string
}

// recorder is an httptest server that records every request and answers
// each with the next canned (status, body), repeating the last.
type recorder struct {
	mu      sync.Mutex
	reqs    []seen
	answers []answer
	srv     *httptest.Server
}

type answer struct {
	status int
	body   string
}

func newRecorder(t *testing.T, answers ...answer) *recorder {
	t.Helper()
	r := &recorder{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, seen{
			Method: req.Method, URI: req.RequestURI, ContentType: req.Header.Get("Content-Type"),
			Accept: req.Header.Get("Accept"), Auth: req.Header.Get("Authorization"),
			IdemKey: req.Header.Get("Idempotency-Key"), Body: string(b),
		})
		a := r.answers[min(len(r.reqs), len(r.answers))-1]
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func newClient(t *testing.T, base string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(base, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", base, err)
	}
	return c
}

var at = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestRequests(t *testing.T) {
	g := vigil.Seconds(30 * time.Second)
	pulse := vigil.Pulse{
		Service: "my service", NextIn: vigil.Seconds(time.Minute), Grace: &g,
		Owner: &vigil.Owner{Type: "mail", Target: "a@b.example"}, Host: "h1", Message: "ok",
	}
	recJSON := `{"op":"pulse","service":"my service","next_in":60,"grace":30,"at":"2026-11-21T12:00:00Z","id":"x","seq":7}`
	wantRec := &vigil.Record{
		Op: vigil.OpPulse, Pulse: vigil.Pulse{Service: "my service", NextIn: vigil.Seconds(time.Minute), Grace: &g},
		At: at, ID: "x", Seq: 7,
	}
	statusJSON := `{"name":"a/b","status":"down","since":"2026-11-21T12:00:00Z","last_pulse":"2026-11-21T11:00:00Z","deadline":"2026-11-21T11:01:00Z","next_in":60,"grace":0,"seq":3}`
	wantStatus := vigil.ServiceStatus{
		Name: "a/b", Status: vigil.StatusDown, Since: at, LastPulse: at.Add(-time.Hour),
		Deadline: at.Add(-59 * time.Minute), NextIn: vigil.Seconds(time.Minute), Seq: 3,
	}

	tests := []struct {
		name   string
		answer answer
		call   func(context.Context, *client.Client) (any, error)
		want   any
		req    seen
	}{
		{
			name:   "pulse",
			answer: answer{202, recJSON},
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Pulse(ctx, pulse, client.WithIdempotencyKey("k-1"))
			},
			want: wantRec,
			req: seen{
				Method: "POST", URI: "/v1/pulses", ContentType: "application/json", IdemKey: "k-1",
				Body: `{"service":"my service","next_in":60,"grace":30,"owner":{"type":"mail","target":"a@b.example"},"host":"h1","message":"ok"}`,
			},
		},
		{
			name:   "batch",
			answer: answer{202, `{"accepted":2,"duplicates":0}`},
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.PulseBatch(ctx, []vigil.Pulse{{Service: "a", NextIn: 1e9}, {Service: "b.c", NextIn: 2e9}})
			},
			want: 2,
			req: seen{
				Method: "POST", URI: "/v1/pulses", ContentType: "application/json",
				Body: `[{"service":"a","next_in":1},{"service":"b.c","next_in":2}]`,
			},
		},
		{
			name:   "cancel escapes the name",
			answer: answer{200, recJSON},
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Cancel(ctx, "a/b 100%?#") },
			want:   wantRec,
			req:    seen{Method: "DELETE", URI: "/v1/services/a%2Fb%20100%25%3F%23"},
		},
		{
			name:   "service",
			answer: answer{200, statusJSON},
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Service(ctx, "a/b") },
			want:   &wantStatus,
			req:    seen{Method: "GET", URI: "/v1/services/a%2Fb"},
		},
		{
			name:   "service unicode",
			answer: answer{200, statusJSON},
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Service(ctx, "Größe ✓") },
			want:   &wantStatus,
			req:    seen{Method: "GET", URI: "/v1/services/Gr%C3%B6%C3%9Fe%20%E2%9C%93"},
		},
		{
			name:   "services page",
			answer: answer{200, `{"items":[` + statusJSON + `],"next_cursor":"YS9i"}`},
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Services(ctx, client.ListOptions{Limit: 10, Cursor: "YQ", Status: []vigil.Status{vigil.StatusDown, vigil.StatusLate}})
			},
			want: &client.ServicePage{Items: []vigil.ServiceStatus{wantStatus}, NextCursor: "YS9i"},
			req:  seen{Method: "GET", URI: "/v1/services?cursor=YQ&limit=10&status=down%2Clate"},
		},
		{
			name:   "services defaults",
			answer: answer{200, `{"items":[]}`},
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Services(ctx, client.ListOptions{})
			},
			want: &client.ServicePage{Items: []vigil.ServiceStatus{}},
			req:  seen{Method: "GET", URI: "/v1/services"},
		},
		{
			name:   "alert",
			answer: answer{202, `{"id":"manual:1","kind":"manual","title":"t","message":"m","level":3,"at":"2026-11-21T12:00:00Z","seq":9}`},
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Alert(ctx, vigil.ManualAlert{Title: "t", Message: "m", Level: vigil.LevelError})
			},
			want: &vigil.Alert{ID: "manual:1", Kind: vigil.AlertManual, Title: "t", Message: "m", Level: vigil.LevelError, At: at, Seq: 9},
			req:  seen{Method: "POST", URI: "/v1/alerts", ContentType: "application/json", Body: `{"title":"t","message":"m","level":3}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, tt.answer)
			c := newClient(t, rec.srv.URL+"/", client.WithToken("s3cret"))
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			tt.req.Accept, tt.req.Auth = "application/json", "Bearer s3cret"
			if diff := cmp.Diff([]seen{tt.req}, rec.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoTokenNoHeaderAndPrefix(t *testing.T) {
	rec := newRecorder(t, answer{200, `{"items":[]}`})
	c := newClient(t, rec.srv.URL+"/mon")
	if _, err := c.Services(context.Background(), client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	r := rec.requests()[0]
	if r.Auth != "" || r.URI != "/mon/v1/services" {
		t.Errorf("request = %+v, want no Authorization and path /mon/v1/services", r)
	}
}

func TestEmptyBatchSendsNothing(t *testing.T) {
	rec := newRecorder(t, answer{500, ``})
	n, err := newClient(t, rec.srv.URL).PulseBatch(context.Background(), nil)
	if n != 0 || err != nil || len(rec.requests()) != 0 {
		t.Errorf("PulseBatch(nil) = %d, %v with %d requests, want 0, nil, none", n, err, len(rec.requests()))
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		answer answer
		want   error
		err    client.Error
	}{
		{
			answer{400, `{"error":"next_in: must be a number of seconds > 0","field":"next_in"}`},
			vigil.ErrInvalid,
			client.Error{Status: 400, Message: "next_in: must be a number of seconds > 0", Field: "next_in"},
		},
		{
			answer{404, `{"error":"service \"x\": not found"}`},
			vigil.ErrNotFound,
			client.Error{Status: 404, Message: `service "x": not found`},
		},
		{answer{413, `{"error":"too large"}`}, vigil.ErrTooLarge, client.Error{Status: 413, Message: "too large"}},
		{answer{415, `{"error":"content type"}`}, vigil.ErrUnsupportedMedia, client.Error{Status: 415, Message: "content type"}},
		{answer{503, `{"error":"catching up"}`}, vigil.ErrUnavailable, client.Error{Status: 503, Message: "catching up"}},
		{answer{502, `<html>bad gateway</html>`}, vigil.ErrUnavailable, client.Error{Status: 502, Message: "<html>bad gateway</html>"}},
		{answer{500, ``}, nil, client.Error{Status: 500, Message: "internal server error"}},
	}
	for _, tt := range tests {
		rec := newRecorder(t, tt.answer)
		_, err := newClient(t, rec.srv.URL).Service(context.Background(), "x")
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("Service() on %d = %v, want a *client.Error", tt.answer.status, err)
		}
		if diff := cmp.Diff(tt.err, *ce); diff != "" {
			t.Errorf("Service() on %d (-want +got):\n%s", tt.answer.status, diff)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Service() on %d = %v, want errors.Is %v", tt.answer.status, err, tt.want)
		}
		for _, other := range []error{vigil.ErrInvalid, vigil.ErrNotFound, vigil.ErrTooLarge, vigil.ErrUnsupportedMedia, vigil.ErrUnavailable} {
			if !errors.Is(other, tt.want) && errors.Is(err, other) {
				t.Errorf("Service() on %d = %v, also errors.Is %v", tt.answer.status, err, other)
			}
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    client.Error
		want string
	}{
		{client.Error{Status: 400, Message: "next_in: bad", Field: "next_in"}, "vigil: 400 Bad Request: next_in: bad"},
		{client.Error{Status: 400, Message: "bad", Field: "limit"}, "vigil: 400 Bad Request: limit: bad"},
		{client.Error{Status: 404, Message: "nope"}, "vigil: 404 Not Found: nope"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestAllServicesFollowsCursors(t *testing.T) {
	item := func(n string) string { return `{"name":"` + n + `","status":"up"}` }
	rec := newRecorder(t,
		answer{200, `{"items":[` + item("a") + `,` + item("b") + `],"next_cursor":"Yg"}`},
		answer{200, `{"items":[` + item("c") + `],"next_cursor":"Yw"}`},
		answer{200, `{"items":[]}`},
	)
	all, err := newClient(t, rec.srv.URL).AllServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, names); diff != "" {
		t.Errorf("AllServices names (-want +got):\n%s", diff)
	}
	var uris []string
	for _, r := range rec.requests() {
		uris = append(uris, r.URI)
	}
	want := []string{"/v1/services?limit=1000", "/v1/services?cursor=Yg&limit=1000", "/v1/services?cursor=Yw&limit=1000"}
	if diff := cmp.Diff(want, uris); diff != "" {
		t.Errorf("AllServices requests (-want +got):\n%s", diff)
	}
}

func TestAllServicesStopsOnRepeatedCursor(t *testing.T) {
	rec := newRecorder(t, answer{200, `{"items":[],"next_cursor":"Yg"}`})
	if _, err := newClient(t, rec.srv.URL).AllServices(context.Background()); err == nil {
		t.Error("AllServices with a server repeating its cursor = nil error, want one")
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "http://h/?q=1", "http://u:p@h", "://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) = nil error, want one", u)
		}
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newClient(t, url).Service(context.Background(), "x")
	var ce *client.Error
	if err == nil || errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "vigil: ") {
		t.Errorf("Service() against a closed server = %v, want a transport error", err)
	}
}

func TestDecodeError(t *testing.T) {
	rec := newRecorder(t, answer{200, `not json`})
	if _, err := newClient(t, rec.srv.URL).Service(context.Background(), "x"); err == nil {
		t.Error("Service() with a non-JSON 200 = nil error, want one")
	}
}
