package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/smtp"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

func TestMailboxReceivesAndLists(t *testing.T) {
	box := newMailbox(2)
	s := gosmtp.NewServer(backend{box: box, log: slog.New(slog.DiscardHandler)})
	s.Domain = "mailsink"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })

	for i, subj := range []string{"one", "=?utf-8?q?caf=C3=A9?=", "three"} {
		msg := "From: vigil@example.com\r\nTo: ops@example.com\r\nSubject: " + subj +
			"\r\nMessage-ID: <m" + string(rune('0'+i)) + "@vigil>\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nService db is d=\r\nown\r\n"
		if err := smtp.SendMail(l.Addr().String(), nil, "vigil@example.com", []string{"ops@example.com"}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(box.routes())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/messages")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Items []Message }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if len(got.Items) != 2 {
		t.Fatalf("kept %d messages, want the newest 2", len(got.Items))
	}
	if got.Items[0].Subject != "three" || got.Items[1].Subject != "café" {
		t.Errorf("subjects %q, %q; want three, café (newest first, decoded)", got.Items[0].Subject, got.Items[1].Subject)
	}
	if got.Items[0].MessageID != "<m2@vigil>" || !strings.Contains(got.Items[0].Body, "Service db is down") {
		t.Errorf("message id %q body %q", got.Items[0].MessageID, got.Items[0].Body)
	}
	resp, err = srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(page), "café") {
		t.Errorf("page does not list the messages:\n%s", page)
	}
}
