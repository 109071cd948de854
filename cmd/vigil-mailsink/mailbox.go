package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one received mail as GET /api/messages shows it. Headers keep
// every header with its decoded values (RFC 2047 encoded words decoded);
// Body is the body after the header block, quoted-printable decoded; Raw is
// the whole message as received.
type Message struct {
	ID        int                 `json:"id"`
	Received  time.Time           `json:"received"`
	From      string              `json:"from"`
	To        []string            `json:"to"`
	Subject   string              `json:"subject"`
	MessageID string              `json:"message_id"`
	Headers   map[string][]string `json:"headers"`
	Body      string              `json:"body"`
	Raw       string              `json:"raw"`
}

// mailbox keeps the newest keep messages.
type mailbox struct {
	mu   sync.Mutex
	keep int
	next int
	msgs []Message // oldest first
}

func newMailbox(keep int) *mailbox { return &mailbox{keep: max(keep, 1), next: 1} }

func (b *mailbox) add(m Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m.ID = b.next
	b.next++
	b.msgs = append(b.msgs, m)
	if over := len(b.msgs) - b.keep; over > 0 {
		b.msgs = append(b.msgs[:0:0], b.msgs[over:]...)
	}
}

// list returns the messages newest first.
func (b *mailbox) list() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Message, len(b.msgs))
	for i, m := range b.msgs {
		out[len(out)-1-i] = m
	}
	return out
}

func (b *mailbox) clear() {
	b.mu.Lock()
	b.msgs = nil
	b.mu.Unlock()
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>vigil mailsink</title>
<style>body{font:14px system-ui,sans-serif;margin:1rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0}</style>
</head><body><h1>vigil mailsink</h1><p>{{len .}} message(s), newest first. JSON: <a href="/api/messages">/api/messages</a></p>
<table><tr><th>#</th><th>Received</th><th>From</th><th>To</th><th>Subject / body</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td>{{.Received.Format "2006-01-02 15:04:05"}}</td><td>{{.From}}</td><td>{{range .To}}{{.}} {{end}}</td>
<td><b>{{.Subject}}</b><pre>{{.Body}}</pre></td></tr>{{end}}</table></body></html>`))

func (b *mailbox) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, b.list())
	})
	mux.HandleFunc("GET /api/messages", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"items": b.list()})
	})
	mux.HandleFunc("DELETE /api/messages", func(w http.ResponseWriter, _ *http.Request) {
		b.clear()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// backend accepts every session; no AUTH, no relay.
type backend struct {
	box *mailbox
	log *slog.Logger
}

func (be backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{be: be}, nil }

type session struct {
	be   backend
	from string
	to   []string
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{Received: time.Now().UTC(), From: s.from, To: s.to, Raw: string(raw), Headers: map[string][]string{}}
	if pm, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		dec := new(mime.WordDecoder)
		for k, vs := range pm.Header {
			for _, v := range vs {
				if d, err := dec.DecodeHeader(v); err == nil {
					v = d
				}
				m.Headers[k] = append(m.Headers[k], v)
			}
		}
		if v := m.Headers["Subject"]; len(v) > 0 {
			m.Subject = v[0]
		}
		if v := m.Headers["Message-Id"]; len(v) > 0 {
			m.MessageID = v[0]
		}
		br := pm.Body
		if strings.EqualFold(pm.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			br = quotedprintable.NewReader(br)
		}
		body, _ := io.ReadAll(br)
		m.Body = string(body)
	} else {
		m.Body = fmt.Sprintf("(unparsable message: %v)", err)
	}
	s.be.box.add(m)
	s.be.log.Info("mail received", "from", s.from, "to", s.to, "subject", m.Subject)
	s.to = nil
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }
