package main

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/client"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
)

// Test helpers here start with "cli" too, apart from the server side's.

type cliRun func(context.Context, []string, io.Writer, io.Writer, func(string) string) int

// cliExec runs one command with env as its environment and returns its exit
// code, stdout and stderr.
func cliExec(run cliRun, env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestCLIAgainstRealServer(t *testing.T) {
	env := map[string]string{"VIGIL_SERVER": stacktest.Serve(t)}
	code, out, errOut := cliExec(runPulse, env, "my service", "--next-in", "60", "--grace", "30s",
		"--owner-type", "email", "--owner-target", "ops@example.com", "--host", "h1", "--message", "nightly")
	if code != 0 || !strings.HasPrefix(out, "pulsed my service (seq ") {
		t.Fatalf("vigil pulse = %d, %q, %q; want 0 and a confirmation", code, out, errOut)
	}
	if code, _, errOut := cliExec(runPulse, env, "--next-in=1h", "db.backup"); code != 0 {
		t.Fatalf("vigil pulse db.backup = %d, %q", code, errOut)
	}

	var items []vigil.ServiceStatus
	bustest.Eventually(t, func() error {
		code, out, errOut := cliExec(runStatus, env, "--json")
		if code != 0 {
			return fmt.Errorf("vigil status --json = %d, %q", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &items); err != nil {
			return fmt.Errorf("decode %q: %w", out, err)
		}
		if len(items) != 2 {
			return fmt.Errorf("%d services, want 2", len(items))
		}
		return nil
	})
	got := items[1]
	if got.Name != "my service" || got.Status != vigil.StatusUp || got.NextIn != vigil.Seconds(time.Minute) ||
		got.Grace != vigil.Seconds(30*time.Second) || got.Host != "h1" || got.Message != "nightly" ||
		got.Owner == nil || *got.Owner != (vigil.Owner{Type: "mail", Target: "ops@example.com"}) {
		t.Errorf("vigil status --json item = %+v, want my service as pulsed", got)
	}

	code, out, _ = cliExec(runStatus, env)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("vigil status = %d, %q, want a header and two rows", code, out)
	}
	if f := strings.Fields(lines[0]); !cmp.Equal(f, []string{"NAME", "STATUS", "SINCE", "LAST", "PULSE", "DEADLINE", "OWNER"}) {
		t.Errorf("header = %q", lines[0])
	}
	// Columns line up: STATUS starts at the same offset on every line.
	col := strings.Index(lines[0], "STATUS")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "up ") {
			t.Errorf("row %q has no status \"up\" under STATUS (offset %d)", l, col)
		}
	}
	if !strings.HasPrefix(lines[2], "my service") || !strings.HasSuffix(lines[2], "mail:ops@example.com") || !strings.Contains(lines[2], " in ") {
		t.Errorf("row = %q, want my service, a deadline ahead and its owner", lines[2])
	}

	if code, out, _ := cliExec(runStatus, env, "--status", "down,late"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("vigil status --status down,late = %d, %q, want only the header", code, out)
	}
	if code, out, errOut := cliExec(runCancel, env, "my service"); code != 0 || out != "cancelled my service (seq 3)\n" {
		t.Errorf("vigil cancel = %d, %q, %q", code, out, errOut)
	}
	bustest.Eventually(t, func() error {
		code, out, _ := cliExec(runStatus, env, "--status=cancelled", "--json")
		if code != 0 || !strings.Contains(out, `"name": "my service"`) {
			return fmt.Errorf("vigil status --status=cancelled = %d, %q", code, out)
		}
		return nil
	})
	if code, _, errOut := cliExec(runCancel, env, "never pulsed"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("vigil cancel of an unknown service = %d, %q, want 1 and a 404", code, errOut)
	}
}

// cliRecorder is an HTTP server that records requests and answers each
// with status and body.
type cliRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
	srv  *httptest.Server
}

func newCLIRecorder(t *testing.T, status int, body string) *cliRecorder {
	t.Helper()
	r := &cliRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.body = append(r.body, string(b))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *cliRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

const cliRecJSON = `{"op":"pulse","service":"x","next_in":60,"grace":0,"at":"2026-11-21T12:00:00Z","seq":5}`

func TestCLIPulseRequest(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantAuth string
		wantURI  string
		wantBody string
	}{
		{
			name:     "flags after the name, env server and token",
			env:      map[string]string{"VIGIL_TOKEN": "envtok"},
			args:     []string{"db.backup", "--next-in", "1h30m", "--grace=0.5"},
			wantAuth: "Bearer envtok",
			wantBody: `{"service":"db.backup","next_in":5400,"grace":0.5}`,
		},
		{
			name:     "flags around the name, --token beats the env",
			env:      map[string]string{"VIGIL_TOKEN": "envtok"},
			args:     []string{"--token", "flagtok", "a/b 100%", "--next-in", "60", "--owner-type", "webhook", "--owner-target", "https://h.example/x"},
			wantAuth: "Bearer flagtok",
			wantBody: `{"service":"a/b 100%","next_in":60,"owner":{"type":"webhook","target":"https://h.example/x"}}`,
		},
		{
			name:     "a name that looks like a flag after --",
			args:     []string{"--next-in", "5s", "--", "--weird"},
			wantBody: `{"service":"--weird","next_in":5}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newCLIRecorder(t, 202, cliRecJSON)
			env := map[string]string{"VIGIL_SERVER": "http://127.0.0.1:1"} // --server wins
			for k, v := range tt.env {
				env[k] = v
			}
			code, out, errOut := cliExec(runPulse, env, append([]string{"--server", rec.srv.URL}, tt.args...)...)
			if code != 0 || !strings.Contains(out, "seq 5") {
				t.Fatalf("vigil pulse %q = %d, %q, %q", tt.args, code, out, errOut)
			}
			if rec.count() != 1 {
				t.Fatalf("%d requests, want 1", rec.count())
			}
			r := rec.reqs[0]
			if r.Method != "POST" || r.URL.Path != "/v1/pulses" || r.Header.Get("Authorization") != tt.wantAuth {
				t.Errorf("request %s %s auth %q, want POST /v1/pulses auth %q", r.Method, r.URL.Path, r.Header.Get("Authorization"), tt.wantAuth)
			}
			if rec.body[0] != tt.wantBody {
				t.Errorf("body = %s, want %s", rec.body[0], tt.wantBody)
			}
		})
	}
}

func TestCLICancelAndStatusRequests(t *testing.T) {
	rec := newCLIRecorder(t, 200, cliRecJSON)
	env := map[string]string{"VIGIL_SERVER": rec.srv.URL}
	if code, _, errOut := cliExec(runCancel, env, "a/b c"); code != 0 {
		t.Fatalf("vigil cancel = %d, %q", code, errOut)
	}
	if r := rec.reqs[0]; r.Method != "DELETE" || r.RequestURI != "/v1/services/a%2Fb%20c" {
		t.Errorf("cancel request = %s %s, want DELETE /v1/services/a%%2Fb%%20c", r.Method, r.RequestURI)
	}
	list := newCLIRecorder(t, 200, `{"items":[]}`)
	env["VIGIL_SERVER"] = list.srv.URL
	if code, out, errOut := cliExec(runStatus, env, "--status", "down, late", "--json"); code != 0 || out != "[]\n" {
		t.Fatalf("vigil status --json = %d, %q, %q; want []", code, out, errOut)
	}
	if r := list.reqs[0]; r.URL.Query().Get("status") != "down,late" {
		t.Errorf("status request = %s, want status=down,late", r.RequestURI)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		run  cliRun
		args []string
		want string // in stderr
	}{
		{"pulse without name", runPulse, []string{"--next-in", "60"}, "want one service NAME"},
		{"pulse with two names", runPulse, []string{"a", "b", "--next-in", "60"}, "got 2 arguments"},
		{"pulse without next-in", runPulse, []string{"a"}, "--next-in is required"},
		{"pulse zero next-in", runPulse, []string{"a", "--next-in", "0"}, "--next-in must be"},
		{"pulse bad duration", runPulse, []string{"a", "--next-in", "soon"}, "want a duration"},
		{"pulse negative duration", runPulse, []string{"a", "--next-in", "-5"}, "must not be negative"},
		{"pulse over a year", runPulse, []string{"a", "--next-in", "9000h"}, "--next-in must be at most one year"},
		{"pulse bad owner", runPulse, []string{"a", "--next-in", "60", "--owner-type", "mail", "--owner-target", "nope"}, "--owner-target"},
		{"pulse owner without type", runPulse, []string{"a", "--next-in", "60", "--owner-target", "a@b.example"}, "--owner-type"},
		{"pulse unknown flag", runPulse, []string{"a", "--next", "60"}, "flag provided but not defined"},
		{"pulse bad server", runPulse, []string{"a", "--next-in", "60", "--server", "localhost:8080"}, "want http://"},
		{"cancel without name", runCancel, nil, "want one service NAME"},
		{"cancel name too long", runCancel, []string{strings.Repeat("x", 300)}, "NAME is 300 bytes"},
		{"status bad filter", runStatus, []string{"--status", "up,dead"}, `unknown status "dead"`},
		{"status argument", runStatus, []string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newCLIRecorder(t, 500, `{"error":"must not be called"}`)
			code, out, errOut := cliExec(tt.run, map[string]string{"VIGIL_SERVER": rec.srv.URL}, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "usage: vigil ") {
				t.Errorf("exit %d, stderr %q; want 2, %q and the usage", code, errOut, tt.want)
			}
			if out != "" || rec.count() != 0 {
				t.Errorf("stdout %q and %d requests, want none", out, rec.count())
			}
		})
	}
}

func TestCLIHelp(t *testing.T) {
	env := map[string]string{"VIGIL_TOKEN": "s3cret-token"}
	tests := []struct {
		run   cliRun
		flags []string
	}{
		{runPulse, []string{"next-in", "grace", "owner-type", "owner-target", "host", "message", "server", "token", "timeout"}},
		{runCancel, []string{"server", "token", "timeout"}},
		{runStatus, []string{"json", "status", "server", "token", "timeout"}},
		{runEvents, []string{"service", "service-exact", "message", "level", "from", "to", "limit", "asc", "json", "server", "token", "timeout"}},
		{runEventsTail, []string{"service", "service-exact", "message", "level", "json", "server", "token", "timeout"}},
	}
	for _, tt := range tests {
		code, out, errOut := cliExec(tt.run, env, "--help")
		if code != 0 || out != "" {
			t.Errorf("--help = %d, stdout %q; want 0 and nothing on stdout", code, out)
		}
		for _, f := range tt.flags {
			if !strings.Contains(errOut, "  -"+f+" ") && !strings.Contains(errOut, "  -"+f+"\n") {
				t.Errorf("--help does not list -%s:\n%s", f, errOut)
			}
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("--help shows the token from the environment:\n%s", errOut)
		}
	}
}

func TestCLIServerErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name   string
		server string
		want   int
	}{
		{"unavailable", newCLIRecorder(t, 503, `{"error":"catching up"}`).srv.URL, 1},
		{"not found", newCLIRecorder(t, 404, `{"error":"not found"}`).srv.URL, 1},
		{"refused as invalid", newCLIRecorder(t, 400, `{"error":"next_in: bad","field":"next_in"}`).srv.URL, 2},
		{"no server", closed.URL, 1},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			cmd  string
			run  cliRun
			args []string
		}{
			{"pulse", runPulse, []string{"a", "--next-in", "60"}},
			{"cancel", runCancel, []string{"a"}},
			{"status", runStatus, nil},
			{"events", runEvents, nil},
		} {
			code, out, errOut := cliExec(c.run, nil, append(c.args, "--server", tt.server)...)
			if code != tt.want || out != "" || !strings.HasPrefix(errOut, "vigil "+c.cmd+": ") {
				t.Errorf("%s: vigil %s = %d, %q, %q; want %d and an error on stderr", tt.name, c.cmd, code, out, errOut, tt.want)
			}
		}
	}
}

func TestCLIDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"60", time.Minute, true},
		{"0.5", 500 * time.Millisecond, true},
		{"60s", time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"-1s", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"1e300", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		var d cliDuration
		err := d.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && d.d != tt.want) {
			t.Errorf("cliDuration.Set(%q) = %v, %v; want %v, ok %v", tt.in, d.d, err, tt.want, tt.ok)
		}
	}
}

func TestCLIRelative(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		at   time.Duration
		want string
	}{
		{-12 * time.Second, "12s ago"},
		{48 * time.Second, "in 48s"},
		{48*time.Second + 900*time.Millisecond, "in 48s"},
		{300 * time.Millisecond, "now"},
		{-3*time.Minute - 5*time.Second, "3m5s ago"},
		{-3 * time.Minute, "3m ago"},
		{2*time.Hour + 10*time.Minute + 59*time.Second, "in 2h10m"},
		{-(4*24*time.Hour + 3*time.Hour), "4d3h ago"},
		{400 * 24 * time.Hour, "in 400d"},
	}
	for _, tt := range tests {
		if got := cliRelative(now.Add(tt.at), now); got != tt.want {
			t.Errorf("cliRelative(now%+v) = %q, want %q", tt.at, got, tt.want)
		}
	}
	if got := cliRelative(time.Time{}, now); got != "-" {
		t.Errorf("cliRelative(zero) = %q, want -", got)
	}
}

func TestCLITable(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	items := []vigil.ServiceStatus{
		{
			Name: "db.backup", Status: vigil.StatusDown, Since: now.Add(-time.Hour), LastPulse: now.Add(-2 * time.Hour),
			Deadline: now.Add(-61 * time.Minute), Owner: &vigil.Owner{Type: "mail", Target: "ops@example.com"},
		},
		{
			Name: "tab\there", Status: vigil.StatusUp, Since: now.Add(-12 * time.Second), LastPulse: now.Add(-12 * time.Second),
			Deadline: now.Add(48 * time.Second),
		},
		{Name: "old", Status: vigil.StatusCancelled, Since: now.Add(-time.Minute), LastPulse: now.Add(-time.Hour), Deadline: now.Add(-59 * time.Minute)},
	}
	var b bytes.Buffer
	cliTable(&b, items, now)
	want := `NAME         STATUS     SINCE    LAST PULSE  DEADLINE  OWNER
db.backup    down       1h ago   2h ago      1h1m ago  mail:ops@example.com
"tab\there"  up         12s ago  12s ago     in 48s    -
old          cancelled  1m ago   1h ago      -         -
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("cliTable (-want +got):\n%s", diff)
	}
}

func TestCLIEventsAgainstRealServer(t *testing.T) {
	base := stacktest.Serve(t)
	env := map[string]string{"VIGIL_SERVER": base}
	c, err := client.New(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msgs := []string{`"quoted; first"`, "two\nlines", "plain disk full", "Größe ✓"}
	for i, m := range msgs {
		if _, err := c.Event(ctx, vigil.Event{Service: []string{"db.backup", "web"}[i%2], Level: vigil.Level(i + 1), Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	var items []vigil.Event
	bustest.Eventually(t, func() error {
		code, out, errOut := cliExec(runEvents, env, "--json")
		if code != 0 {
			return fmt.Errorf("vigil events --json = %d, %q", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &items); err != nil {
			return fmt.Errorf("decode %q: %w", out, err)
		}
		if len(items) != len(msgs) {
			return fmt.Errorf("%d events, want %d", len(items), len(msgs))
		}
		return nil
	})
	for i, e := range items { // newest first
		if want := msgs[len(msgs)-1-i]; e.Message != want {
			t.Errorf("event %d message = %q, want %q", i, e.Message, want)
		}
	}

	code, out, _ := cliExec(runEvents, env, "--service", "^DB", "--level", "warning", "--from", "1h")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "RECEIVED") || !strings.Contains(lines[1], "db.backup") ||
		!strings.Contains(lines[1], "plain disk full") || !strings.Contains(lines[1], "  error  ") {
		t.Errorf("vigil events --service ^DB --level warning = %d, %q; want a header and the one error of db.backup", code, out)
	}
	code, out, _ = cliExec(runEvents, env, "--service-exact", "web", "--asc")
	if code != 0 || !strings.Contains(out, `"two\nlines"`) || strings.Index(out, `"two\nlines"`) > strings.Index(out, "Größe") {
		t.Errorf("vigil events --service-exact web --asc = %d, %q; want both web events oldest first, newlines quoted", code, out)
	}
	code, out, _ = cliExec(runEvents, env, "--limit", "3", "--json")
	if err := json.Unmarshal([]byte(out), &items); code != 0 || err != nil || len(items) != 3 {
		t.Errorf("vigil events --limit 3 = %d, %d events (%v); want 3", code, len(items), err)
	}
	code, _, errOut := cliExec(runEvents, env, "--message", "(")
	if code != 2 || !strings.Contains(errOut, "--message") {
		t.Errorf("vigil events --message ( = %d, %q; want 2 naming --message", code, errOut)
	}
	code, _, errOut = cliExec(runEvents, env, "--to", "yesterday")
	if code != 2 || !strings.Contains(errOut, "-to") {
		t.Errorf("vigil events --to yesterday = %d, %q; want a usage error", code, errOut)
	}
}

// cliSyncBuffer is an io.Writer safe for a command writing while the test
// reads.
type cliSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *cliSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *cliSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCLIEventsTail(t *testing.T) {
	base := stacktest.Serve(t)
	c, err := client.New(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut cliSyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEvents(ctx, []string{"tail", "--service-exact", "X", "--level", "3"}, &out, &errOut,
			func(k string) string { return map[string]string{"VIGIL_SERVER": base}[k] })
	}()
	// The tail starts at the end of the stream: send until one shows up.
	bustest.Eventually(t, func() error {
		for _, e := range []vigil.Event{
			{Service: "X", Level: 1, Message: "too low"},
			{Service: "Y", Level: 4, Message: "other service"},
			{Service: "X", Level: 3, Message: "shown; \"quoted\""},
		} {
			if _, err := c.Event(context.Background(), e); err != nil {
				return err
			}
		}
		if !strings.Contains(out.String(), "shown") {
			return errors.New("nothing printed yet")
		}
		return nil
	})
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("vigil events tail = %d after interrupt, %q; want 0", code, errOut.String())
	}
	for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if f := strings.Fields(l); len(f) < 3 || f[1] != "error" || f[2] != "X" || !strings.Contains(l, `shown; "quoted"`) {
			t.Errorf("tail line %q, want only X's level-3 events", l)
		}
	}
}

func TestCLITime(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-21T10:00:00Z", now.Add(-2 * time.Hour)},
		{"2026-11-21T11:00:00.5+01:00", now.Add(-2*time.Hour + 500*time.Millisecond)},
		{"1795000000", time.Unix(1795000000, 0)},
		{"90m", now.Add(-90 * time.Minute)},
		{"0s", now},
	}
	for _, tt := range tests {
		c := cliTime{now: func() time.Time { return now }}
		if err := c.Set(tt.in); err != nil || !c.t.Equal(tt.want) {
			t.Errorf("cliTime.Set(%q) = %v, %v; want %v", tt.in, c.t, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5m", "0x10", "NaN"} {
		c := cliTime{}
		if err := c.Set(bad); err == nil {
			t.Errorf("cliTime.Set(%q) = %v, want an error", bad, c.t)
		}
	}
}
