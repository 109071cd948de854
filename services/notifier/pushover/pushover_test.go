package pushover_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/notifier/pushover"
	"github.com/vigil-monitor/vigil/services/notifier/pushover/pushovertest"
)

func newChannel(tb testing.TB, baseURL string, edit func(*pushover.Config)) *pushover.Channel {
	tb.Helper()
	cfg := pushover.DefaultConfig()
	cfg.Token, cfg.BaseURL = pushovertest.Token, baseURL
	if edit != nil {
		edit(&cfg)
	}
	ch, err := pushover.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return ch
}

var at = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func message(level vigil.Level) channel.Message {
	return channel.Message{
		ID: "job-1", Title: "db-backup is down", Body: "No pulse since 05:00.",
		Level: level, URL: "https://vigil.example.org/v1/services/db-backup", At: at,
	}
}

func send(t *testing.T, ch *pushover.Channel, target string, m channel.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return ch.Send(ctx, target, m)
}

func TestSend(t *testing.T) {
	srv := pushovertest.New(t)
	ch := newChannel(t, srv.URL(), func(c *pushover.Config) { c.Sound = "siren" })
	if ch.Type() != "pushover" {
		t.Errorf("Type() = %q", ch.Type())
	}
	if err := send(t, ch, pushovertest.User, message(vigil.LevelError)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Wait(t, 1)[0]
	want := pushovertest.Message{
		Token: pushovertest.Token, User: pushovertest.User, Title: "db-backup is down", Message: "No pulse since 05:00.",
		URL: "https://vigil.example.org/v1/services/db-backup", URLTitle: "Open in vigil", Priority: 0,
		Timestamp: at.Unix(), Sound: "siren",
	}
	got := m
	got.Form, got.Request, got.ContentType = nil, "", ""
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recorded\n%+v\nwant\n%+v", got, want)
	}
	if m.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", m.ContentType)
	}
	if l, ok := ch.Limits(); !ok || l.Limit != pushovertest.DefaultLimit || l.Remaining != pushovertest.DefaultLimit-1 || l.Reset.IsZero() {
		t.Errorf("Limits() = %+v, %v", l, ok)
	}
}

func TestPriorities(t *testing.T) {
	srv := pushovertest.New(t)
	def := newChannel(t, srv.URL(), nil)
	custom := newChannel(t, srv.URL(), func(c *pushover.Config) {
		c.Priorities = map[string]int{"critical": 2, "info": -2, "6": 1}
	})
	for _, tc := range []struct {
		level        vigil.Level
		def, custom  int
		customExpire bool
	}{
		{vigil.LevelDebug, -1, -1, false},
		{vigil.LevelInfo, -1, -2, false},
		{vigil.LevelWarning, 0, 0, false},
		{vigil.LevelError, 0, 0, false},
		{vigil.LevelCritical, 1, 2, true},
		{5, 1, 2, true},
		{9, 1, 1, false},
	} {
		if got := def.Priority(tc.level); got != tc.def {
			t.Errorf("default Priority(%v) = %d, want %d", tc.level, got, tc.def)
		}
		if got := custom.Priority(tc.level); got != tc.custom {
			t.Errorf("custom Priority(%v) = %d, want %d", tc.level, got, tc.custom)
		}
	}
	// Emergency priority goes out with retry and expire, which the API
	// requires.
	if err := send(t, custom, pushovertest.User, message(vigil.LevelCritical)); err != nil {
		t.Fatalf("Send at emergency priority: %v", err)
	}
	if m := srv.Wait(t, 1)[0]; m.Priority != 2 || m.Retry != 60 || m.Expire != 3600 || m.Receipt == "" {
		t.Errorf("emergency message recorded as priority %d retry %d expire %d receipt %q", m.Priority, m.Retry, m.Expire, m.Receipt)
	}
}

func TestTruncatesToTheLimits(t *testing.T) {
	srv := pushovertest.New(t)
	ch := newChannel(t, srv.URL(), nil)
	m := message(vigil.LevelError)
	m.Title = strings.Repeat("é", 300)
	m.Body = strings.Repeat("✓", 2000)
	m.URL = "https://vigil.example.org/" + strings.Repeat("a", 600)
	if err := send(t, ch, pushovertest.Group, m); err != nil {
		t.Fatalf("Send: %v (the server enforces the limits)", err)
	}
	got := srv.Wait(t, 1)[0]
	if n := utf8.RuneCountInString(got.Title); n != pushover.MaxTitleLen || !strings.HasSuffix(got.Title, "…") {
		t.Errorf("title is %d characters, want %d ending in …", n, pushover.MaxTitleLen)
	}
	if n := utf8.RuneCountInString(got.Message); n != pushover.MaxMessageLen || !utf8.ValidString(got.Message) {
		t.Errorf("message is %d characters, want %d", n, pushover.MaxMessageLen)
	}
	if got.URL != "" {
		t.Errorf("url %q: an over-long URL should be left out, not cut", got.URL)
	}
}

func TestEmptyBodyUsesTitle(t *testing.T) {
	srv := pushovertest.New(t)
	ch := newChannel(t, srv.URL(), nil)
	m := message(vigil.LevelError)
	m.Body = " \n"
	if err := send(t, ch, pushovertest.User, m); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(t, 1)[0].Message; got != "db-backup is down" {
		t.Errorf("message = %q, want the title", got)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"héllo wörld", 3, "hé…"},
		{"🙂🙂🙂", 2, "🙂…"},
		{"ab", 1, "…"},
		{"ab", 0, ""},
		{"", 3, ""},
	} {
		if got := pushover.Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{500, false},
		{502, false},
		{503, false},
		{429, false},
		{400, true},
		{401, true},
		{403, true},
		{404, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := pushovertest.New(t)
			ch := newChannel(t, srv.URL(), nil)
			srv.Fail(tc.status, 1)
			err := send(t, ch, pushovertest.User, message(vigil.LevelError))
			var apiErr *pushover.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Request == "" || len(apiErr.Errors) == 0 {
				t.Fatalf("Send = %v, want an *APIError with status %d, request id and errors", err, tc.status)
			}
			if channel.IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.permanent, tc.permanent)
			}
			if err := send(t, ch, pushovertest.User, message(vigil.LevelError)); err != nil {
				t.Errorf("Send after the failure: %v", err)
			}
		})
	}
}

func TestInvalidInputIsPermanent(t *testing.T) {
	srv := pushovertest.New(t, pushovertest.WithToken("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"))
	ch := newChannel(t, srv.URL(), nil) // sends pushovertest.Token: well-formed, unknown
	err := send(t, ch, pushovertest.User, message(vigil.LevelError))
	if !channel.IsPermanent(err) || !strings.Contains(err.Error(), "application token is invalid") {
		t.Errorf("Send with an unknown token = %v, want permanent naming the API's error", err)
	}
	if strings.Contains(err.Error(), pushovertest.Token) {
		t.Errorf("error %q shows the token", err)
	}

	srv = pushovertest.New(t)
	ch = newChannel(t, srv.URL(), nil)
	err = send(t, ch, strings.Repeat("x", 30), message(vigil.LevelError))
	if !channel.IsPermanent(err) || !strings.Contains(err.Error(), "user identifier is invalid") {
		t.Errorf("Send to an unknown user = %v, want permanent", err)
	}
	for _, target := range []string{"", "short", strings.Repeat("a", 31), pushovertest.User + "," + pushovertest.Group, "uQiRzpo4DXghDmr9QzzfQu27cmVRs!"} {
		if err := send(t, ch, target, message(vigil.LevelError)); !channel.IsPermanent(err) {
			t.Errorf("Send to %q = %v, want permanent", target, err)
		}
	}
	if srv.Requests() != 1 {
		t.Errorf("Requests = %d, want 1: malformed targets need no request", srv.Requests())
	}
}

func TestMonthlyLimitIsTransient(t *testing.T) {
	srv := pushovertest.New(t, pushovertest.WithLimit(1))
	ch := newChannel(t, srv.URL(), nil)
	if err := send(t, ch, pushovertest.User, message(vigil.LevelError)); err != nil {
		t.Fatal(err)
	}
	err := send(t, ch, pushovertest.User, message(vigil.LevelError))
	if err == nil || channel.IsPermanent(err) {
		t.Fatalf("Send over the monthly limit = %v, want transient", err)
	}
	if l, _ := ch.Limits(); l.Remaining != 0 || l.Limit != 1 {
		t.Errorf("Limits() = %+v, want 0 of 1 remaining", l)
	}
}

func TestOddAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		permanent bool
	}{
		{"status 0 with 200", 200, `{"status":0,"errors":["user is not active"],"request":"r"}`, true},
		{"garbage with 200", 200, `<html>proxy</html>`, false},
		{"redirect", 302, ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer api.Close()
			ch := newChannel(t, api.URL, func(c *pushover.Config) {
				c.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			})
			err := send(t, ch, pushovertest.User, message(vigil.LevelError))
			if err == nil || channel.IsPermanent(err) != tc.permanent {
				t.Errorf("Send = %v, want permanent=%v", err, tc.permanent)
			}
		})
	}
}

func TestConnectionFailureIsTransient(t *testing.T) {
	srv := pushovertest.New(t)
	url := srv.URL()
	srv.Close()
	err := send(t, newChannel(t, url, nil), pushovertest.User, message(vigil.LevelError))
	if err == nil || channel.IsPermanent(err) {
		t.Fatalf("Send to a closed server = %v, want transient", err)
	}
	if strings.Contains(err.Error(), pushovertest.Token) {
		t.Errorf("error %q shows the token", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	srv := pushovertest.New(t)
	ch := newChannel(t, srv.URL(), nil)
	gate := srv.Block()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ch.Send(ctx, pushovertest.User, message(vigil.LevelError)) }()
	<-gate.Reached()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || channel.IsPermanent(err) {
		t.Errorf("Send with a cancelled context = %v, want transient context.Canceled", err)
	}
}

func TestAtMostTwoConnections(t *testing.T) {
	srv := pushovertest.New(t)
	ch := newChannel(t, srv.URL(), nil)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs <- ch.Send(ctx, pushovertest.User, message(vigil.LevelError))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if srv.Received() != n || srv.MaxInFlight() > 2 || srv.Conns() > 2 {
		t.Errorf("Received %d, MaxInFlight %d, Conns %d; want %d, ≤ 2, ≤ 2 (Pushover's rule)", srv.Received(), srv.MaxInFlight(), srv.Conns(), n)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func() pushover.Config {
		c := pushover.DefaultConfig()
		c.Token = pushovertest.Token
		return c
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("Validate(defaults + token) = %v", err)
	}
	zero := pushover.Config{Token: pushovertest.Token}
	if err := zero.Validate(); err != nil {
		t.Errorf("zero values mean defaults, Validate = %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*pushover.Config)
	}{
		{"token", func(c *pushover.Config) { c.Token = "" }},
		{"token", func(c *pushover.Config) { c.Token = "not-a-token" }},
		{"base_url", func(c *pushover.Config) { c.BaseURL = "api.pushover.net/1/messages.json" }},
		{"priorities", func(c *pushover.Config) { c.Priorities = map[string]int{"loud": 1} }},
		{"priorities", func(c *pushover.Config) { c.Priorities = map[string]int{"error": 3} }},
		{"sound", func(c *pushover.Config) { c.Sound = "a\nb" }},
		{"retry", func(c *pushover.Config) { c.Retry = 10 * time.Second }},
		{"expire", func(c *pushover.Config) { c.Expire = 4 * time.Hour }},
		{"timeout", func(c *pushover.Config) { c.Timeout = -1 }},
	} {
		c := ok()
		tc.edit(&c)
		err := c.Validate()
		var fe *vigil.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Validate(%v) = %v, want an error for %s", c, err, tc.field)
		}
		if _, err := pushover.New(c); err == nil {
			t.Errorf("New accepted an invalid config (%s)", tc.field)
		}
	}
}

func TestConfigRedactsToken(t *testing.T) {
	c := pushover.DefaultConfig()
	c.Token = pushovertest.Token
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "pushover", c)
	for name, s := range map[string]string{"String": c.String(), "%v": fmt.Sprintf("%v", c), "slog": buf.String()} {
		if strings.Contains(s, pushovertest.Token) || !strings.Contains(s, "REDACTED") {
			t.Errorf("%s = %s, want the token REDACTED", name, s)
		}
	}
}

// BenchmarkSend measures deliveries per second to a local pushovertest
// server over the channel's two keep-alive connections.
func BenchmarkSend(b *testing.B) {
	srv := pushovertest.New(b, pushovertest.WithLimit(1<<30))
	ch := newChannel(b, srv.URL(), nil)
	m := message(vigil.LevelError)
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ch.Send(context.Background(), pushovertest.User, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(srv.Conns()), "connections")
}
