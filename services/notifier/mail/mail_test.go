package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/notifier/mail"
)

const password = "hunter2-secret"

// newChannel returns a mail channel pointed at srv in clear text; edit
// adjusts the config.
func newChannel(tb testing.TB, srv *smtptest.Server, edit func(*mail.Config)) *mail.Channel {
	tb.Helper()
	cfg := mail.DefaultConfig()
	cfg.Host, cfg.Port, cfg.TLS = srv.Host(), srv.Port(), mail.TLSNone
	cfg.From = "vigil <vigil@alerts.example.org>"
	cfg.Timeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	ch, err := mail.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = ch.Close() })
	return ch
}

func message(id string) channel.Message {
	return channel.Message{
		ID:    id,
		Title: "db-backup is down\r\nBcc: evil@example.com",
		Body:  "No pulse since 10:00.\nCafé ✓",
		Level: vigil.LevelCritical,
		URL:   "https://vigil.example.org/v1/services/db-backup",
		Alerts: []vigil.Alert{
			{ID: "down:db-backup:7", Service: "db-backup"},
			{ID: "down:web:3", Service: "web"},
		},
		At: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC),
	}
}

func send(t *testing.T, ch *mail.Channel, target, id string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return ch.Send(ctx, target, message(id))
}

func TestSendHeadersAndBody(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	if ch.Type() != "mail" {
		t.Errorf("Type() = %q", ch.Type())
	}
	if err := send(t, ch, "ops@example.com", "job-1"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Wait(t, 1)[0]
	if m.From != "vigil@alerts.example.org" || len(m.To) != 1 || m.To[0] != "ops@example.com" {
		t.Errorf("envelope = %q → %q", m.From, m.To)
	}
	for key, want := range map[string]string{
		"From":            `"vigil" <vigil@alerts.example.org>`,
		"To":              "<ops@example.com>",
		"Message-Id":      mail.MessageID("job-1", "alerts.example.org"),
		"X-Vigil-Alert":   "down:db-backup:7, down:web:3",
		"X-Vigil-Service": "db-backup, web",
		"X-Vigil-Level":   "critical",
		"Auto-Submitted":  "auto-generated",
		"Bcc":             "",
	} {
		if got := m.Header.Get(key); got != want {
			t.Errorf("header %s = %q, want %q", key, got, want)
		}
	}
	if got, want := m.Subject(), "db-backup is down  Bcc: evil@example.com"; got != want {
		t.Errorf("Subject = %q, want %q (one line)", got, want)
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	text, err := m.Text()
	if err != nil {
		t.Fatal(err)
	}
	if want := "No pulse since 10:00.\nCafé ✓\n\nhttps://vigil.example.org/v1/services/db-backup\n"; text != want {
		t.Errorf("body = %q, want %q", text, want)
	}
}

func TestMessageIDStablePerJob(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	for _, id := range []string{"job-1", "job-1", "job-2"} {
		if err := send(t, ch, "ops@example.com", id); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Wait(t, 3)
	a, b, c := msgs[0].Header.Get("Message-Id"), msgs[1].Header.Get("Message-Id"), msgs[2].Header.Get("Message-Id")
	if a != b || a == c {
		t.Errorf("Message-IDs %q, %q, %q: want the first two equal, the third different", a, b, c)
	}
	if !strings.HasPrefix(a, "<") || !strings.HasSuffix(a, "@alerts.example.org>") || len(a) != len("<@alerts.example.org>")+32 {
		t.Errorf("Message-ID %q is not <32 hex digits@domain>", a)
	}
}

func TestSTARTTLS(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithRequireTLS())
	ch := newChannel(t, srv, func(c *mail.Config) { c.TLS = mail.TLSStartTLS; c.CAFile = srv.CAFile(t) })
	if err := send(t, ch, "ops@example.com", "j"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := srv.Wait(t, 1)[0]; !m.TLS {
		t.Error("mail was not sent over TLS")
	}
}

func TestSTARTTLSNeverDowngrades(t *testing.T) {
	srv := smtptest.New(t) // offers no STARTTLS
	ch := newChannel(t, srv, func(c *mail.Config) { c.TLS = mail.TLSStartTLS; c.RootCAs = nil })
	err := send(t, ch, "ops@example.com", "j")
	if err == nil || channel.IsPermanent(err) {
		t.Fatalf("Send to a server without STARTTLS = %v, want a transient error", err)
	}
	if srv.Received() != 0 {
		t.Error("mail sent in clear text")
	}
}

func TestUntrustedCertificate(t *testing.T) {
	for _, mode := range []string{mail.TLSStartTLS, mail.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			opt := smtptest.WithSTARTTLS()
			if mode == mail.TLSImplicit {
				opt = smtptest.WithImplicitTLS()
			}
			srv := smtptest.New(t, opt)
			ch := newChannel(t, srv, func(c *mail.Config) { c.TLS = mode }) // system roots only
			if err := send(t, ch, "ops@example.com", "j"); err == nil {
				t.Fatal("Send trusted a certificate from an unknown CA")
			}
			if srv.Received() != 0 {
				t.Error("mail delivered")
			}
		})
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithImplicitTLS(), smtptest.WithAuth("alice", password))
	ch := newChannel(t, srv, func(c *mail.Config) {
		c.TLS, c.RootCAs = mail.TLSImplicit, srv.CertPool()
		c.Username, c.Password = "alice", password
	})
	for i := range 2 {
		if err := send(t, ch, "ops@example.com", fmt.Sprint(i)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs := srv.Wait(t, 2)
	if !msgs[1].TLS || msgs[1].User != "alice" || srv.Conns() != 1 {
		t.Errorf("TLS = %v, User = %q, Conns = %d; want true, alice, 1", msgs[1].TLS, msgs[1].User, srv.Conns())
	}
}

func TestAuth(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithSTARTTLS(), smtptest.WithAuth("alice", password))
	edit := func(pass string) func(*mail.Config) {
		return func(c *mail.Config) {
			c.TLS, c.RootCAs = mail.TLSStartTLS, srv.CertPool()
			c.Username, c.Password = "alice", pass
		}
	}
	err := send(t, newChannel(t, srv, edit("wrong")), "ops@example.com", "j")
	if !channel.IsPermanent(err) {
		t.Fatalf("Send with a wrong password = %v, want a permanent error (535)", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q shows the password", err)
	}
	if err := send(t, newChannel(t, srv, edit(password)), "ops@example.com", "j"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := srv.Wait(t, 1)[0]; m.User != "alice" || !m.TLS {
		t.Errorf("User = %q, TLS = %v", m.User, m.TLS)
	}
	err = send(t, newChannel(t, srv, func(c *mail.Config) { c.TLS, c.RootCAs = mail.TLSStartTLS, srv.CertPool() }), "ops@example.com", "j")
	if !channel.IsPermanent(err) {
		t.Errorf("Send without AUTH to a server that requires it = %v, want permanent (530)", err)
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		stage     smtptest.Stage
		code      int
		permanent bool
	}{
		{smtptest.StageHello, 421, false},
		{smtptest.StageHello, 554, true},
		{smtptest.StageMail, 421, false},
		{smtptest.StageMail, 451, false},
		{smtptest.StageMail, 550, true},
		{smtptest.StageRcpt, 450, false},
		{smtptest.StageRcpt, 452, false},
		{smtptest.StageRcpt, 550, true},
		{smtptest.StageRcpt, 553, true},
		{smtptest.StageData, 451, false},
		{smtptest.StageData, 552, true},
		{smtptest.StageData, 554, true},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.stage, tc.code), func(t *testing.T) {
			srv := smtptest.New(t)
			ch := newChannel(t, srv, nil)
			srv.Fail(tc.stage, tc.code, 0)
			err := send(t, ch, "ops@example.com", "j")
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if channel.IsPermanent(err) != tc.permanent {
				t.Fatalf("IsPermanent(%v) = %v, want %v", err, !tc.permanent, tc.permanent)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.code)) {
				t.Errorf("error %q does not name the reply code", err)
			}
			srv.Heal()
			if err := send(t, ch, "ops@example.com", "j"); err != nil {
				t.Fatalf("Send after the failure: %v", err)
			}
		})
	}
}

func TestInvalidTargetIsPermanent(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	for _, target := range []string{"", "not an address", "Ops <ops@example.com>", "a@b.c\r\nRCPT TO:<x@y.z>"} {
		if err := send(t, ch, target, "j"); !channel.IsPermanent(err) {
			t.Errorf("Send to %q = %v, want permanent", target, err)
		}
	}
	if srv.Conns() != 0 {
		t.Errorf("Conns = %d, want 0: nothing to connect for", srv.Conns())
	}
}

func TestServerDownThenUp(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	if err := send(t, ch, "ops@example.com", "1"); err != nil {
		t.Fatal(err)
	}
	srv.Down()
	err := send(t, ch, "ops@example.com", "2")
	if err == nil || channel.IsPermanent(err) {
		t.Fatalf("Send while down = %v, want a transient error", err)
	}
	srv.Up()
	if err := send(t, ch, "ops@example.com", "3"); err != nil {
		t.Fatalf("Send after Up: %v", err)
	}
	if msgs := srv.Wait(t, 2); msgs[1].Header.Get("Message-Id") != mail.MessageID("3", "alerts.example.org") {
		t.Errorf("second mail is %q, want job 3", msgs[1].Header.Get("Message-Id"))
	}
}

func TestDeadReusedSessionIsReplaced(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	if err := send(t, ch, "ops@example.com", "1"); err != nil {
		t.Fatal(err)
	}
	srv.Down() // drops the idle session
	srv.Up()
	if err := send(t, ch, "ops@example.com", "2"); err != nil {
		t.Fatalf("Send over a dropped idle session: %v, want a retry on a new one", err)
	}
	// A server closing an idle session says 421 first (RFC 5321 §3.8).
	srv.Fail(smtptest.StageMail, 421, 1)
	if err := send(t, ch, "ops@example.com", "3"); err != nil {
		t.Fatalf("Send over a session closed with 421: %v", err)
	}
	if srv.Received() != 3 || srv.Conns() != 3 {
		t.Errorf("Received = %d, Conns = %d; want 3, 3", srv.Received(), srv.Conns())
	}
}

func TestConnectionReuse(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	const n = 25
	for i := range n {
		if err := send(t, ch, "ops@example.com", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range srv.Wait(t, n) {
		if m.Conn != 1 {
			t.Fatalf("a mail came over connection %d, want all over 1", m.Conn)
		}
	}
	if srv.Conns() != 1 {
		t.Errorf("Conns = %d, want 1", srv.Conns())
	}
}

func TestIdleSessionIsNotReused(t *testing.T) {
	srv := smtptest.New(t)
	// Any gap between two sends is longer than a nanosecond.
	ch := newChannel(t, srv, func(c *mail.Config) { c.IdleTimeout = time.Nanosecond })
	for i := range 2 {
		if err := send(t, ch, "ops@example.com", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := srv.Wait(t, 2); msgs[0].Conn == msgs[1].Conn {
		t.Errorf("both mails over connection %d, want a new session after the idle timeout", msgs[0].Conn)
	}
}

func TestConcurrentSendsShareTheSessions(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, func(c *mail.Config) { c.MaxConnections = 3 })
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs <- ch.Send(ctx, "ops@example.com", message(fmt.Sprint(i)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.Wait(t, n)
	if c := srv.Conns(); c < 1 || c > 3 {
		t.Errorf("Conns = %d, want 1..3", c)
	}
}

func TestSendHonoursContext(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, func(c *mail.Config) { c.Timeout = time.Minute })
	gate := srv.Block(smtptest.StageData)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ch.Send(ctx, "ops@example.com", message("held")) }()
	<-gate.Reached()
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || channel.IsPermanent(err) {
		t.Fatalf("Send with a cancelled context = %v, want transient context.Canceled", err)
	}
	gate.Release()
	if err := send(t, ch, "ops@example.com", "next"); err != nil {
		t.Fatalf("Send after a cancelled one: %v", err)
	}
}

func TestSendWaitsForAFreeSession(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, func(c *mail.Config) { c.MaxConnections = 1 })
	gate := srv.Block(smtptest.StageData)
	done := make(chan error, 1)
	go func() { done <- send(t, ch, "ops@example.com", "first") }()
	<-gate.Reached()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := ch.Send(ctx, "ops@example.com", message("second")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send while the only session is busy = %v, want context.Canceled", err)
	}
	gate.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseQuitsIdleSessions(t *testing.T) {
	srv := smtptest.New(t)
	ch := newChannel(t, srv, nil)
	if err := send(t, ch, "ops@example.com", "1"); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := send(t, ch, "ops@example.com", "2"); err != nil {
		t.Fatalf("Send after Close: %v", err)
	}
	if srv.Conns() != 2 {
		t.Errorf("Conns = %d, want 2 (no reuse after Close)", srv.Conns())
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func() mail.Config {
		c := mail.DefaultConfig()
		c.Host, c.From = "smtp.example.com", "vigil@example.com"
		return c
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("Validate(defaults + host + from) = %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*mail.Config)
	}{
		{"host", func(c *mail.Config) { c.Host = "" }},
		{"host", func(c *mail.Config) { c.Host = "smtp.example.com:587" }},
		{"port", func(c *mail.Config) { c.Port = 70000 }},
		{"tls", func(c *mail.Config) { c.TLS = "ssl" }},
		{"tls", func(c *mail.Config) { c.TLS, c.Username, c.Password = mail.TLSNone, "u", password }},
		{"password", func(c *mail.Config) { c.Username = "u" }},
		{"password", func(c *mail.Config) { c.Password = password }},
		{"from", func(c *mail.Config) { c.From = "" }},
		{"from", func(c *mail.Config) { c.From = "vigil" }},
		{"timeout", func(c *mail.Config) { c.Timeout = -time.Second }},
		{"max_connections", func(c *mail.Config) { c.MaxConnections = 101 }},
		{"ca_file", func(c *mail.Config) { c.CAFile = "/nonexistent/ca.pem" }},
	} {
		c := ok()
		tc.edit(&c)
		err := c.Validate()
		var fe *vigil.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Validate(%+v) = %v, want an error for %s", c, err, tc.field)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("error %q shows the password", err)
		}
		if _, err := mail.New(c); err == nil {
			t.Errorf("New accepted an invalid config (%s)", tc.field)
		}
	}
	loop := ok()
	loop.Host, loop.TLS, loop.Username, loop.Password = "127.0.0.1", mail.TLSNone, "u", password
	if err := loop.Validate(); err != nil {
		t.Errorf("tls none with AUTH to loopback = %v, want valid", err)
	}
}

func TestConfigRedactsPassword(t *testing.T) {
	c := mail.DefaultConfig()
	c.Host, c.From, c.Username, c.Password = "smtp.example.com", "vigil@example.com", "alice", password
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "mail", c)
	for name, s := range map[string]string{"String": c.String(), "fmt": fmt.Sprint(c), "%v": fmt.Sprintf("%v", c), "slog": buf.String()} {
		if strings.Contains(s, password) {
			t.Errorf("%s shows the password: %s", name, s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("%s = %s, want the password shown as REDACTED", name, s)
		}
	}
}

// BenchmarkSend measures deliveries per second over reused sessions to a
// local smtptest server in clear text, with one session and with four.
func BenchmarkSend(b *testing.B) {
	for _, sessions := range []int{1, 4} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			srv := smtptest.New(b, smtptest.WithDiscard())
			ch := newChannel(b, srv, func(c *mail.Config) { c.MaxConnections = sessions })
			ctx := context.Background()
			m := message("bench")
			b.SetParallelism(sessions)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := ch.Send(ctx, "ops@example.com", m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(srv.Conns()), "connections")
		})
	}
}
