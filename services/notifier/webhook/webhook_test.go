package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/notifier/webhook"
)

const secret = "s3cret-webhook-key"

// request is what the receiver saw.
type request struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint that verifies the signature the way a
// receiver's documentation would tell it to (its own HMAC, constant-time
// compare) and answers status.
func receiver(t *testing.T, status int) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(r.Header.Get("X-Vigil-Signature")), []byte(want)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		got <- request{method: r.Method, header: r.Header.Clone(), body: body}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "thanks\r\nbye")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// newChannel returns a channel that may call the test servers on
// 127.0.0.1 (allowed_networks 127.0.0.0/8), edited by edit.
func newChannel(t *testing.T, edit func(*webhook.Config)) *webhook.Channel {
	t.Helper()
	cfg := webhook.DefaultConfig()
	cfg.Secret = secret
	cfg.AllowedNetworks = []string{"127.0.0.0/8"}
	if edit != nil {
		edit(&cfg)
	}
	ch, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ch
}

var at = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func message() channel.Message {
	return channel.Message{
		ID: "job-42", Title: "db-backup is down", Body: "No pulse since 05:00.", Level: vigil.LevelError,
		URL: "https://vigil.example.org/v1/services/db-backup", At: at,
		Alerts: []vigil.Alert{{
			ID: "down:db-backup:7", Kind: vigil.AlertDown, Service: "db-backup", Title: "down", Level: vigil.LevelError, At: at,
			Owner: &vigil.Owner{Type: "pushover", Target: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"},
		}},
	}
}

func send(t *testing.T, ch *webhook.Channel, target string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return ch.Send(ctx, target, message())
}

func TestSend(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent)
	ch := newChannel(t, func(c *webhook.Config) { c.Headers = map[string]string{"authorization": "Bearer abc"} })
	if ch.Type() != "webhook" {
		t.Errorf("Type() = %q", ch.Type())
	}
	before := time.Now().Add(-time.Second)
	if err := send(t, ch, srv.URL+"/hook?x=1"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.method != http.MethodPost || r.header.Get("Content-Type") != "application/json" ||
		r.header.Get("X-Vigil-Delivery") != "job-42" || r.header.Get("Authorization") != "Bearer abc" {
		t.Errorf("request %s %v", r.method, r.header)
	}
	if !webhook.Verify(secret, r.body, r.header.Get("X-Vigil-Signature")) {
		t.Error("Verify rejected the signature the receiver accepted")
	}
	var p webhook.Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	ts, err := strconv.ParseInt(r.header.Get("X-Vigil-Timestamp"), 10, 64)
	if err != nil || ts != p.SentAt.Unix() || p.SentAt.Before(before) {
		t.Errorf("X-Vigil-Timestamp %q, sent_at %v: want the same recent second", r.header.Get("X-Vigil-Timestamp"), p.SentAt)
	}
	if p.ID != "job-42" || p.Title != "db-backup is down" || p.Body != "No pulse since 05:00." || p.Level != vigil.LevelError ||
		p.LevelName != "error" || p.URL != "https://vigil.example.org/v1/services/db-backup" || !p.At.Equal(at) {
		t.Errorf("payload %+v", p)
	}
	if len(p.Alerts) != 1 || p.Alerts[0].ID != "down:db-backup:7" || p.Alerts[0].Service != "db-backup" {
		t.Errorf("alerts %+v", p.Alerts)
	}
	if bytes.Contains(r.body, []byte("uQiRzpo4DXghDmr9QzzfQu27cmVRsG")) || p.Alerts[0].Owner != nil {
		t.Error("payload carries the alert's owner")
	}
}

func TestPayloadShape(t *testing.T) {
	b, err := webhook.Encode(message(), at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "title", "body", "level", "level_name", "url", "at", "sent_at", "alerts"} {
		if _, ok := m[k]; !ok {
			t.Errorf("payload has no %q: %s", k, b)
		}
	}
	if m["sent_at"] != "2026-03-04T05:07:07Z" || m["level"] != float64(3) {
		t.Errorf("sent_at %v, level %v", m["sent_at"], m["level"])
	}
	empty, _ := webhook.Encode(channel.Message{ID: "x"}, at)
	if !bytes.Contains(empty, []byte(`"alerts":[]`)) {
		t.Errorf("no alerts encode as %s, want an empty list", empty)
	}
}

func TestMethodPut(t *testing.T) {
	srv, got := receiver(t, http.StatusOK)
	if err := send(t, newChannel(t, func(c *webhook.Config) { c.Method = "put" }), srv.URL); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.method != http.MethodPut {
		t.Errorf("method %s, want PUT", r.method)
	}
}

func TestWrongSecretIsRejectedByTheReceiver(t *testing.T) {
	srv, _ := receiver(t, http.StatusOK)
	err := send(t, newChannel(t, func(c *webhook.Config) { c.Secret = "another" }), srv.URL)
	if !channel.IsPermanent(err) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "bad signature") {
		t.Errorf("Send with a wrong secret = %v, want permanent 401 quoting the answer", err)
	}
	if strings.Contains(err.Error(), "another") {
		t.Errorf("error %q shows the secret", err)
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false},
		{201, true, false},
		{202, true, false},
		{204, true, false},
		{500, false, false},
		{502, false, false},
		{503, false, false},
		{429, false, false},
		{408, false, false},
		{400, false, true},
		{401, false, true},
		{403, false, true},
		{404, false, true},
		{410, false, true},
		{413, false, true},
		{301, false, true},
		{302, false, true},
		{307, false, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv, _ := receiver(t, tc.status)
			err := send(t, newChannel(t, nil), srv.URL)
			switch {
			case tc.ok && err != nil:
				t.Errorf("Send = %v, want success", err)
			case !tc.ok && err == nil:
				t.Error("Send succeeded, want an error")
			case !tc.ok && channel.IsPermanent(err) != tc.permanent:
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.permanent, tc.permanent)
			case !tc.ok && !strings.Contains(err.Error(), strconv.Itoa(tc.status)):
				t.Errorf("error %q does not name the status", err)
			}
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	target, got := receiver(t, http.StatusOK)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	if err := send(t, newChannel(t, nil), redirect.URL); !channel.IsPermanent(err) {
		t.Errorf("Send to a redirect = %v, want permanent", err)
	}
	if len(got) != 0 {
		t.Error("the redirect was followed")
	}
}

func TestConnectionFailureIsTransient(t *testing.T) {
	srv, _ := receiver(t, http.StatusOK)
	url := srv.URL
	srv.Close()
	err := send(t, newChannel(t, nil), strings.Replace(url, "http://", "http://user:pw@", 1))
	if err == nil || channel.IsPermanent(err) {
		t.Fatalf("Send to a closed server = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("error %q shows the URL's password", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	reached := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection (and cancels r's context)
		// only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		close(reached)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- newChannel(t, nil).Send(ctx, srv.URL, message()) }()
	<-reached
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || channel.IsPermanent(err) {
		t.Errorf("Send with a cancelled context = %v, want transient context.Canceled", err)
	}
}

func TestTargets(t *testing.T) {
	srv, got := receiver(t, http.StatusOK)
	ch := newChannel(t, func(c *webhook.Config) { c.AllowedHosts = []string{"127.0.0.1", "*.example.com"} })
	if err := send(t, ch, srv.URL); err != nil {
		t.Errorf("Send to an allowed host: %v", err)
	}
	for _, target := range []string{
		"", "not a url", "ftp://127.0.0.1/x", "/relative", "http://",
		"http://169.254.169.254/latest/meta-data", "https://example.com.evil.org/x", "https://example.com/x",
	} {
		if err := send(t, ch, target); !channel.IsPermanent(err) {
			t.Errorf("Send to %q = %v, want permanent", target, err)
		}
	}
	if len(got) != 1 {
		t.Errorf("%d requests, want 1", len(got))
	}
}

func TestNoSecretNoSignature(t *testing.T) {
	headers := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { headers <- r.Header.Clone() }))
	defer srv.Close()
	if err := send(t, newChannel(t, func(c *webhook.Config) { c.Secret = "" }), srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, ok := (<-headers)["X-Vigil-Signature"]; ok {
		t.Error("signature sent without a secret")
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"job-1"}`)
	sig := webhook.Sign(secret, body)
	for _, tc := range []struct {
		name           string
		secret, header string
		body           []byte
		want           bool
	}{
		{"valid", secret, sig, body, true},
		{"tampered body", secret, sig, []byte(`{"id":"job-2"}`), false},
		{"wrong secret", "other", sig, body, false},
		{"no prefix", secret, strings.TrimPrefix(sig, "sha256="), body, false},
		{"sha1 prefix", secret, "sha1=" + strings.TrimPrefix(sig, "sha256="), body, false},
		{"not hex", secret, "sha256=zz", body, false},
		{"truncated", secret, sig[:len(sig)-2], body, false},
		{"empty header", secret, "", body, false},
		{"empty secret", "", webhook.Sign("", body), body, false},
	} {
		if got := webhook.Verify(tc.secret, tc.body, tc.header); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
	// The documented example: HMAC-SHA256("It's a Secret to Everybody",
	// "Hello, World!"), GitHub's test vector for X-Hub-Signature-256.
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := webhook.Sign("It's a Secret to Everybody", []byte("Hello, World!")); got != want {
		t.Errorf("Sign(test vector) = %s, want %s", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (webhook.Config{}).Validate(); err != nil {
		t.Errorf("zero Config = %v, want valid (defaults)", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*webhook.Config)
	}{
		{"method", func(c *webhook.Config) { c.Method = "GET" }},
		{"headers", func(c *webhook.Config) { c.Headers = map[string]string{"Bad Name": "x"} }},
		{"headers", func(c *webhook.Config) { c.Headers = map[string]string{"content-type": "text/plain"} }},
		{"headers", func(c *webhook.Config) { c.Headers = map[string]string{"X-Vigil-Delivery": "x"} }},
		{"headers", func(c *webhook.Config) { c.Headers = map[string]string{"X-Token": "a\r\nb"} }},
		{"timeout", func(c *webhook.Config) { c.Timeout = -time.Second }},
		{"allowed_hosts", func(c *webhook.Config) { c.AllowedHosts = []string{"https://example.com"} }},
		{"allowed_hosts", func(c *webhook.Config) { c.AllowedHosts = []string{"*."} }},
		{"allowed_networks", func(c *webhook.Config) { c.AllowedNetworks = []string{"10.0.0.0/33"} }},
		{"allowed_networks", func(c *webhook.Config) { c.AllowedNetworks = []string{"10.0.0.0/8", "localhost"} }},
		{"allowed_networks", func(c *webhook.Config) { c.AllowedNetworks = []string{"fe80::/10%eth0"} }},
		{"allowed_networks", func(c *webhook.Config) { c.AllowedNetworks = []string{"fe80::1%eth0"} }},
		{"allowed_networks", func(c *webhook.Config) { c.AllowedNetworks = []string{""} }},
		{"allowed_networks", func(c *webhook.Config) { c.AllowedNetworks = []string{"127.0.0.1-127.0.0.9"} }},
	} {
		c := webhook.DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		var fe *vigil.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Validate(%v) = %v, want an error for %s", c, err, tc.field)
		}
		if _, err := webhook.New(c); err == nil {
			t.Errorf("New accepted an invalid config (%s)", tc.field)
		}
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	c := webhook.DefaultConfig()
	c.Secret, c.Headers = secret, map[string]string{"Authorization": "Bearer topsecret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "webhook", c)
	for name, s := range map[string]string{"String": c.String(), "%v": fmt.Sprintf("%v", c), "slog": buf.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, "topsecret") || !strings.Contains(s, "Authorization") {
			t.Errorf("%s = %s, want secrets redacted, header names shown", name, s)
		}
	}
}

// BenchmarkSend measures signed deliveries per second to a local receiver.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := webhook.DefaultConfig()
	cfg.Secret = secret
	cfg.AllowedNetworks = []string{"127.0.0.0/8"}
	ch, err := webhook.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m := message()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ch.Send(context.Background(), srv.URL, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
