package notifier_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/mail"
)

// newMail returns a mail channel on srv (plain SMTP on 127.0.0.1).
func newMail(tb testing.TB, srv *smtptest.Server, conns int) *mail.Channel {
	tb.Helper()
	cfg := mail.DefaultConfig()
	cfg.Host, cfg.Port, cfg.TLS, cfg.From = srv.Host(), srv.Port(), mail.TLSNone, "vigil <vigil@example.com>"
	cfg.MaxConnections = conns
	ch, err := mail.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ch.Close() })
	return ch
}

func TestMailDeliveryRetriesAndDeadLetters(t *testing.T) {
	srv := smtptest.New(t)
	h := start(t, testConfig(newMail(t, srv, 2)), 1)

	// 451 twice at RCPT (transient), then accepted.
	srv.Fail(smtptest.StageRcpt, 451, 2)
	a := downAlert("backup", 1)
	a.Owner = &vigil.Owner{Type: "email", Target: "ops@example.com"}
	h.alert(a)
	got := h.waitAttempts(a.ID, notifier.OutcomeDelivered, 1)
	if got[0].Attempt != 3 {
		t.Errorf("delivered at attempt %d, want 3", got[0].Attempt)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	m := msgs[0]
	if s := m.Header.Get("Subject"); s != "backup is down" {
		t.Errorf("Subject = %q", s)
	}
	if id := m.Header.Get("Message-Id"); id != mail.MessageID(got[0].Job, "example.com") {
		t.Errorf("Message-ID = %q, want the job's %q", id, mail.MessageID(got[0].Job, "example.com"))
	}
	if !strings.Contains(string(m.Body), "backup on h1 has not pulsed since") {
		t.Errorf("body = %s", m.Body)
	}

	// 550 (permanent): a dead letter at once, delivered after a retry.
	srv.Fail(smtptest.StageRcpt, 550, 1)
	b := downAlert("web", 2)
	b.Owner = &vigil.Owner{Type: "mail", Target: "dev@example.com"}
	h.alert(b)
	dead := h.waitAttempts(b.ID, notifier.OutcomeDead, 1)
	if dead[0].Attempt != 1 || !strings.Contains(dead[0].Error, "550") {
		t.Errorf("dead = %+v", dead[0])
	}
	var p deadPage
	h.do(http.MethodGet, "/v1/deadletters?channel=mail", "", &p)
	if len(p.Items) != 1 {
		t.Fatalf("%d dead letters", len(p.Items))
	}
	if code := h.do(http.MethodPost, fmt.Sprintf("/v1/deadletters/%d/retry", p.Items[0].Seq), "", nil); code != http.StatusAccepted {
		t.Fatalf("retry = %d", code)
	}
	h.waitAttempts(b.ID, notifier.OutcomeDelivered, 1)
	msgs = srv.Messages()
	if len(msgs) != 2 || msgs[1].To[0] != "dev@example.com" {
		t.Errorf("mails = %+v", msgs)
	}
}
