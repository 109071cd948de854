package smtptest_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/vigil-monitor/vigil/internal/smtptest"
)

const msg = "From: a@example.org\r\nTo: b@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
	"line one\r\n=E2=9C=93 done\r\n"

func dial(t *testing.T, srv *smtptest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(c *smtp.Client) error {
	return c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(msg))
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestRecordsAndReusesConnection(t *testing.T) {
	srv := smtptest.New(t)
	c := dial(t, srv)
	for range 3 {
		if err := send(c); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	msgs := srv.Wait(t, 3)
	if len(msgs) != 3 || srv.Received() != 3 {
		t.Fatalf("got %d messages (Received %d), want 3", len(msgs), srv.Received())
	}
	m := msgs[0]
	if m.From != "a@example.org" || len(m.To) != 1 || m.To[0] != "b@example.org" {
		t.Errorf("envelope = %q → %q", m.From, m.To)
	}
	if got := m.Subject(); got != "café" {
		t.Errorf("Subject() = %q, want café", got)
	}
	text, err := m.Text()
	if err != nil || text != "line one\n✓ done\n" {
		t.Errorf("Text() = %q, %v", text, err)
	}
	if m.TLS || m.User != "" {
		t.Errorf("TLS = %v, User = %q on a plain session", m.TLS, m.User)
	}
	if srv.Conns() != 1 || msgs[2].Conn != 1 {
		t.Errorf("Conns() = %d, last Conn = %d, want one connection", srv.Conns(), msgs[2].Conn)
	}
}

func TestFail(t *testing.T) {
	for _, tc := range []struct {
		stage smtptest.Stage
		code  int
	}{
		{smtptest.StageMail, 451},
		{smtptest.StageRcpt, 550},
		{smtptest.StageData, 554},
		{smtptest.StageData, 452},
	} {
		t.Run(string(tc.stage)+"-"+string(rune('0'+tc.code/100)), func(t *testing.T) {
			srv := smtptest.New(t)
			srv.Fail(tc.stage, tc.code, 1)
			c := dial(t, srv)
			if err := send(c); code(err) != tc.code {
				t.Fatalf("send = %v, want reply %d", err, tc.code)
			}
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := send(c); err != nil {
				t.Fatalf("second send = %v, want success after one failure", err)
			}
			if srv.Received() != 1 {
				t.Errorf("Received() = %d, want 1", srv.Received())
			}
		})
	}
}

func TestFailUntilHeal(t *testing.T) {
	srv := smtptest.New(t)
	srv.Fail(smtptest.StageRcpt, 550, 0)
	c := dial(t, srv)
	for range 3 {
		if err := send(c); code(err) != 550 {
			t.Fatalf("send = %v, want 550", err)
		}
		_ = c.Reset()
	}
	srv.Heal()
	if err := send(c); err != nil {
		t.Fatalf("send after Heal = %v", err)
	}
}

func TestFail421ClosesConnection(t *testing.T) {
	srv := smtptest.New(t)
	srv.Fail(smtptest.StageMail, 421, 1)
	c := dial(t, srv)
	if err := send(c); code(err) != 421 {
		t.Fatalf("send = %v, want 421", err)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("NOOP after 421 succeeded, want a closed connection")
	}
	if err := send(dial(t, srv)); err != nil {
		t.Fatalf("send on a new connection = %v", err)
	}
	if srv.Conns() != 2 {
		t.Errorf("Conns() = %d, want 2", srv.Conns())
	}
}

func TestFailHello(t *testing.T) {
	srv := smtptest.New(t)
	srv.Fail(smtptest.StageHello, 554, 1)
	c := dial(t, srv)
	if err := c.Hello("client.test"); code(err) != 554 {
		t.Fatalf("EHLO = %v, want 554", err)
	}
}

func TestDownUp(t *testing.T) {
	srv := smtptest.New(t)
	c := dial(t, srv)
	if err := send(c); err != nil {
		t.Fatal(err)
	}
	srv.Down()
	if err := c.Noop(); err == nil {
		t.Error("NOOP on a connection of a downed server succeeded")
	}
	if c2, err := smtp.Dial(srv.Addr()); err == nil {
		c2.Close()
		t.Fatal("dial while down succeeded")
	}
	srv.Up()
	if err := send(dial(t, srv)); err != nil {
		t.Fatalf("send after Up = %v", err)
	}
	msgs := srv.Wait(t, 2)
	if msgs[0].Conn != 1 || msgs[1].Conn != 2 || srv.Conns() != 2 {
		t.Errorf("Conn = %d, %d; Conns() = %d; want 1, 2; 2", msgs[0].Conn, msgs[1].Conn, srv.Conns())
	}
}

func TestAuth(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithAuth("alice", "s3cret"))
	if err := send(dial(t, srv)); code(err) != 530 {
		t.Fatalf("send without AUTH = %v, want 530", err)
	}
	c := dial(t, srv)
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong")); code(err) != 535 {
		t.Fatalf("AUTH with a wrong password = %v, want 535", err)
	}
	c = dial(t, srv)
	if err := c.Auth(sasl.NewPlainClient("", "alice", "s3cret")); err != nil {
		t.Fatalf("AUTH = %v", err)
	}
	if err := send(c); err != nil {
		t.Fatal(err)
	}
	if m := srv.Wait(t, 1)[0]; m.User != "alice" {
		t.Errorf("User = %q, want alice", m.User)
	}
}

func TestSTARTTLS(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithRequireTLS())
	if err := send(dial(t, srv)); code(err) != 530 {
		t.Fatalf("send without STARTTLS = %v, want 530", err)
	}
	untrusted, err := smtp.DialStartTLS(srv.Addr(), &tls.Config{ServerName: "127.0.0.1"})
	if err == nil { // the handshake happens at the first command after STARTTLS
		err = send(untrusted)
		untrusted.Close()
	}
	if err == nil {
		t.Fatal("STARTTLS trusting the system roots succeeded, want an unknown authority")
	}
	c, err := smtp.DialStartTLS(srv.Addr(), &tls.Config{RootCAs: srv.CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("DialStartTLS: %v", err)
	}
	defer c.Close()
	if err := send(c); err != nil {
		t.Fatal(err)
	}
	if m := srv.Wait(t, 1)[0]; !m.TLS {
		t.Error("TLS = false after STARTTLS")
	}
	if srv.CAFile(t) == "" || len(srv.CAPEM()) == 0 {
		t.Error("no CA file or PEM")
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithImplicitTLS())
	c, err := smtp.DialTLS(srv.Addr(), &tls.Config{RootCAs: srv.CertPool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer c.Close()
	if err := send(c); err != nil {
		t.Fatal(err)
	}
	if m := srv.Wait(t, 1)[0]; !m.TLS {
		t.Error("TLS = false on implicit TLS")
	}
}

func TestBlock(t *testing.T) {
	srv := smtptest.New(t)
	gate := srv.Block(smtptest.StageData)
	c := dial(t, srv)
	done := make(chan error, 1)
	go func() { done <- send(c) }()
	<-gate.Reached()
	if srv.Received() != 0 {
		t.Fatal("message accepted while held")
	}
	gate.Release()
	if err := <-done; err != nil {
		t.Fatalf("send after Release = %v", err)
	}
	srv.Wait(t, 1)
}

func TestDiscard(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithDiscard())
	if err := send(dial(t, srv)); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Wait(t, 1); len(msgs) != 0 || srv.Received() != 1 {
		t.Errorf("Wait = %d messages, Received() = %d; want 0, 1", len(msgs), srv.Received())
	}
}
