package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/api"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// env is one API role on a real embedded JetStream, served by httptest.
type env struct {
	assets *bus.Assets
	role   *api.Role
	reg    *prometheus.Registry
	srv    *httptest.Server
}

// newEnv provisions a fresh bus and builds the role with the default
// config changed by edits; run starts it.
func newEnv(t *testing.T, edits ...func(*api.Config)) *env {
	t.Helper()
	s := bustest.New(t)
	a := s.Provision(t)
	reg := prometheus.NewRegistry()
	cfg := api.DefaultConfig()
	for _, edit := range edits {
		edit(&cfg)
	}
	r, err := api.New(cfg, api.Deps{
		Conn: s.Conn(t), Assets: a, Log: bustest.Logger(t), Metrics: reg,
		Now: func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rt := chi.NewRouter()
	r.Routes(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return &env{assets: a, role: r, reg: reg, srv: srv}
}

// run starts Role.Run until the test ends and waits for the view to open.
func (e *env) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.role.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	bustest.Eventually(t, func() error {
		code, body := e.get(t, "/v1/services")
		if code != http.StatusOK {
			return fmt.Errorf("GET /v1/services = %d %s", code, body)
		}
		return nil
	})
}

func (e *env) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

type listBody struct {
	Items      []vigil.ServiceStatus `json:"items"`
	NextCursor string                `json:"next_cursor"`
}

func (e *env) list(t *testing.T, query string) (listBody, error) {
	t.Helper()
	code, b := e.get(t, "/v1/services"+query)
	if code != http.StatusOK {
		return listBody{}, fmt.Errorf("GET /v1/services%s = %d %s", query, code, b)
	}
	var l listBody
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("decode list: %v (%s)", err, b)
	}
	return l, nil
}

// pulse stores a record for name, received at t0+at with the given period
// and grace, and returns the Service the API should derive from it.
func (e *env) pulse(t *testing.T, name string, at, nextIn, grace time.Duration) *vigil.Service {
	t.Helper()
	g := vigil.Seconds(grace)
	rec := vigil.Record{Op: vigil.OpPulse, At: t0.Add(at), Pulse: vigil.Pulse{
		Service: name, NextIn: vigil.Seconds(nextIn), Grace: &g, Host: "h1",
		Owner: &vigil.Owner{Type: vigil.ChannelMail, Target: "ops@example.com"},
	}}
	return e.put(t, rec)
}

func (e *env) put(t *testing.T, rec vigil.Record) *vigil.Service {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.assets.JS.Publish(context.Background(), vigil.PulseSubject(rec.Service), b)
	if err != nil {
		t.Fatalf("publish record of %q: %v", rec.Service, err)
	}
	rec.Seq = ack.Sequence
	return &vigil.Service{Record: rec}
}

func (e *env) verdict(t *testing.T, name string, v vigil.Verdict) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.assets.JS.Publish(context.Background(), "$KV."+vigil.BucketServices+"."+vigil.Token(name), b); err != nil {
		t.Fatalf("publish verdict of %q: %v", name, err)
	}
}

// names are awkward on purpose: spaces, dots, subject wildcards, a slash, a
// percent sign, unicode and a leading underscore must all round-trip.
var names = []string{"db-backup", "my service", "db.backup", "a/b", "100%", "Größe ✓", "_hidden", "*", "x?y#z"}

func TestListAndGet(t *testing.T) {
	e := newEnv(t)
	want := map[string]vigil.ServiceStatus{}
	// Half before Run (read while catching up), half after (live).
	for _, n := range names[:4] {
		want[n] = e.pulse(t, n, -10*time.Second, time.Minute, 30*time.Second).StatusView(t0)
	}
	e.run(t)
	for _, n := range names[4:] {
		want[n] = e.pulse(t, n, -10*time.Second, time.Minute, 30*time.Second).StatusView(t0)
	}
	sorted := slices.Sorted(func(yield func(string) bool) {
		for n := range want {
			if !yield(n) {
				return
			}
		}
	})
	var got listBody
	bustest.Eventually(t, func() error {
		var err error
		got, err = e.list(t, "")
		if err == nil && len(got.Items) != len(want) {
			err = fmt.Errorf("%d items, want %d", len(got.Items), len(want))
		}
		return err
	})
	var gotNames []string
	for _, it := range got.Items {
		gotNames = append(gotNames, it.Name)
		if diff := cmp.Diff(want[it.Name], it); diff != "" {
			t.Errorf("list item %q (-want +got):\n%s", it.Name, diff)
		}
	}
	if diff := cmp.Diff(sorted, gotNames); diff != "" {
		t.Errorf("list order (-want +got):\n%s", diff)
	}
	if got.NextCursor != "" {
		t.Errorf("next_cursor = %q on the only page, want none", got.NextCursor)
	}
	for _, n := range names {
		path := "/v1/services/" + url.PathEscape(n)
		code, b := e.get(t, path)
		if code != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", path, code, b)
			continue
		}
		var st vigil.ServiceStatus
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if diff := cmp.Diff(want[n], st); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}
}

func TestGetReadsFreshAndJoinsVerdict(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	// A service down since t0-30s: 2 min silent with a 1 min period, no grace.
	s := e.pulse(t, "db.backup", -2*time.Minute, time.Minute, 0)
	// GET reads the bucket itself: no waiting for the view.
	code, b := e.get(t, "/v1/services/db.backup")
	if code != http.StatusOK {
		t.Fatalf("GET = %d %s, want 200", code, b)
	}
	since := t0.Add(-45 * time.Second)
	e.verdict(t, "db.backup", vigil.Verdict{Service: "db.backup", Status: vigil.StatusDown, Since: since, Seq: s.Seq, DownSeq: s.Seq})
	var st vigil.ServiceStatus
	bustest.Eventually(t, func() error {
		_, b := e.get(t, "/v1/services/db.backup")
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		if !st.Since.Equal(since) {
			return fmt.Errorf("since = %v, want the verdict's %v", st.Since, since)
		}
		return nil
	})
	if st.Status != vigil.StatusDown || st.Seq != s.Seq {
		t.Errorf("GET = %+v, want down at seq %d", st, s.Seq)
	}
	// The list joins the same verdict.
	bustest.Eventually(t, func() error {
		l, err := e.list(t, "")
		if err != nil {
			return err
		}
		if len(l.Items) != 1 || !l.Items[0].Since.Equal(since) {
			return fmt.Errorf("list = %+v, want one item since %v", l.Items, since)
		}
		return nil
	})
}

func TestPagination(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	var want []string
	for i := range 25 {
		n := fmt.Sprintf("svc %02d.x", i)
		want = append(want, n)
		e.pulse(t, n, 0, time.Minute, 0)
	}
	bustest.Eventually(t, func() error {
		l, err := e.list(t, "?limit=1000")
		if err == nil && len(l.Items) != len(want) {
			err = fmt.Errorf("%d items, want %d", len(l.Items), len(want))
		}
		return err
	})
	var got []string
	var sizes []int
	cursor := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		q := "?limit=10"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		l, err := e.list(t, q)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(l.Items))
		for _, it := range l.Items {
			got = append(got, it.Name)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names over all pages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{10, 10, 5}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	// An exact last page carries no cursor either.
	l, err := e.list(t, "?limit=25")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 25 || l.NextCursor != "" {
		t.Errorf("limit=25: %d items, next_cursor %q, want 25 and none", len(l.Items), l.NextCursor)
	}
}

func TestStatusFilter(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	e.pulse(t, "up", 0, time.Minute, time.Minute)
	e.pulse(t, "late", -90*time.Second, time.Minute, time.Minute)
	e.pulse(t, "down", -time.Hour, time.Minute, time.Minute)
	c := e.pulse(t, "cancelled", -time.Hour, time.Minute, time.Minute)
	rec := c.Record
	rec.Op, rec.CancelledAt = vigil.OpCancel, t0.Add(-time.Second)
	e.put(t, rec)
	bustest.Eventually(t, func() error {
		l, err := e.list(t, "?status=cancelled")
		if err == nil && len(l.Items) != 1 {
			err = fmt.Errorf("%d cancelled, want 1", len(l.Items))
		}
		return err
	})
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"cancelled", "down", "late", "up"}},
		{"?status=down", []string{"down"}},
		{"?status=down,late", []string{"down", "late"}},
		{"?status=up&status=cancelled", []string{"cancelled", "up"}},
		{"?status=DOWN,%20up", []string{"down", "up"}},
		{"?status=late&limit=1", []string{"late"}},
		{"?status=", []string{"cancelled", "down", "late", "up"}},
	}
	for _, tt := range tests {
		l, err := e.list(t, tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range l.Items {
			got = append(got, it.Name)
			if string(it.Status) != it.Name {
				t.Errorf("list(%s): %q has status %q", tt.query, it.Name, it.Status)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("list(%s) (-want +got):\n%s", tt.query, diff)
		}
		if l.NextCursor != "" {
			t.Errorf("list(%s) next_cursor = %q, want none", tt.query, l.NextCursor)
		}
	}
}

func TestDeleteAndPurge(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	for _, n := range []string{"a", "b c", "d.e"} {
		e.pulse(t, n, 0, time.Minute, 0)
	}
	e.verdict(t, "b c", vigil.Verdict{Service: "b c", Status: vigil.StatusUp, Since: t0})
	ctx := context.Background()
	if err := e.assets.Pulses.Delete(ctx, vigil.Token("b c")); err != nil {
		t.Fatal(err)
	}
	if err := e.assets.Pulses.Purge(ctx, vigil.Token("d.e")); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, func() error {
		l, err := e.list(t, "")
		if err == nil && (len(l.Items) != 1 || l.Items[0].Name != "a") {
			err = fmt.Errorf("list = %+v, want only a", l.Items)
		}
		return err
	})
	for _, n := range []string{"b c", "d.e"} {
		if code, b := e.get(t, "/v1/services/"+url.PathEscape(n)); code != http.StatusNotFound {
			t.Errorf("GET deleted %q = %d %s, want 404", n, code, b)
		}
	}
	// Pulsing again lists it again.
	e.pulse(t, "b c", 0, time.Minute, 0)
	bustest.Eventually(t, func() error {
		l, err := e.list(t, "")
		if err == nil && len(l.Items) != 2 {
			err = fmt.Errorf("list = %+v, want a and b c", l.Items)
		}
		return err
	})
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	tests := []struct {
		path  string
		code  int
		field string
	}{
		{"/v1/services?limit=0", 400, "limit"},
		{"/v1/services?limit=1001", 400, "limit"},
		{"/v1/services?limit=ten", 400, "limit"},
		{"/v1/services?limit=", 400, "limit"},
		{"/v1/services?cursor=!!", 400, "cursor"},
		{"/v1/services?status=dead", 400, "status"},
		{"/v1/services/nope", 404, ""},
		{"/v1/services/" + url.PathEscape("no such/service"), 404, ""},
		{"/v1/services/%ff", 400, "name"},
	}
	for _, tt := range tests {
		code, b := e.get(t, tt.path)
		var body struct{ Error, Field string }
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("GET %s: body %s is not JSON: %v", tt.path, b, err)
			continue
		}
		if code != tt.code || body.Field != tt.field || body.Error == "" {
			t.Errorf("GET %s = %d %s, want %d with field %q", tt.path, code, b, tt.code, tt.field)
		}
	}
}

func TestCatchingUp(t *testing.T) {
	e := newEnv(t)
	code, b := e.get(t, "/v1/services")
	if code != http.StatusServiceUnavailable || string(b) != "{\"error\":\"catching up\"}\n" {
		t.Errorf("GET /v1/services before Run = %d %s, want 503 catching up", code, b)
	}
	// Records stored before Run are all there on the first page served.
	for i := range 50 {
		e.pulse(t, fmt.Sprintf("s%03d", i), 0, time.Minute, 0)
	}
	e.run(t)
	l, err := e.list(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 50 {
		t.Errorf("first list after catching up has %d items, want 50", len(l.Items))
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	e.pulse(t, "up1", 0, time.Minute, 0)
	e.pulse(t, "up2", 0, time.Minute, 0)
	e.pulse(t, "down", -time.Hour, time.Minute, 0)
	want := map[string]float64{"up": 2, "late": 0, "down": 1, "cancelled": 0}
	bustest.Eventually(t, func() error {
		got, err := gauges(e.reg, "vigil_api_services")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return errors.New("vigil_api_services (-want +got):\n" + diff)
		}
		return nil
	})
}

// gauges returns the values of gauge family name by its status label.
func gauges(reg *prometheus.Registry, name string) (map[string]float64, error) {
	fams, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out, nil
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*api.Config)
		field string
	}{
		{"default", func(*api.Config) {}, ""},
		{"zero max", func(c *api.Config) { c.MaxLimit = 0 }, "max_limit"},
		{"default over max", func(c *api.Config) { c.DefaultLimit = 2000 }, "default_limit"},
		{"no timeout", func(c *api.Config) { c.ReadTimeout = 0 }, "read_timeout"},
		{"no events window", func(c *api.Config) { c.EventsWindow = 0 }, "events_window"},
		{"no scan budget", func(c *api.Config) { c.ScanBudget = 0 }, "scan_budget"},
		{"no trim interval", func(c *api.Config) { c.TrimInterval = 0 }, "trim_interval"},
		{"no streams", func(c *api.Config) { c.MaxStreams = 0 }, "max_streams"},
		{"no stream buffer", func(c *api.Config) { c.StreamBuffer = 0 }, "stream_buffer"},
		{"no slow timeout", func(c *api.Config) { c.StreamSlowTimeout = 0 }, "stream_slow_timeout"},
		{"no heartbeat", func(c *api.Config) { c.StreamHeartbeat = 0 }, "stream_heartbeat"},
	}
	for _, tt := range tests {
		c := api.DefaultConfig()
		tt.edit(&c)
		var field string
		var fe *vigil.FieldError
		if err := c.Validate(); errors.As(err, &fe) {
			field = fe.Field
		} else if err != nil {
			t.Fatalf("%s: Validate() = %v, not a *FieldError", tt.name, err)
		}
		if field != tt.field {
			t.Errorf("%s: Validate() field = %q, want %q", tt.name, field, tt.field)
		}
	}
}
