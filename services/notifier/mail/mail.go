// Package mail is the notifier's SMTP channel: it turns one channel.Message
// into one plain-text mail to one address, sent with
// github.com/wneessen/go-mail.
//
// Sessions are reused: the channel keeps up to Config.MaxConnections SMTP
// sessions open (EHLO, STARTTLS and AUTH done once) and sends message after
// message over them, RSET between (RFC 5321 §4.1.1.5). A session that failed
// is closed and the next delivery dials a new one; a reused session that
// turns out to be dead before the server took anything (connection error or
// 421 at MAIL) is replaced once within the same Send.
//
// Every mail carries a Message-ID derived from channel.Message.ID (see
// MessageID), so a redelivery after a crash between the server's 250 and the
// notifier's acknowledgement is recognisably the same mail to the receiving
// side, plus X-Vigil-Alert, X-Vigil-Service and X-Vigil-Level headers for
// filters and Auto-Submitted: auto-generated (RFC 3834) against auto-replies.
//
// Errors follow RFC 5321 §4.2.1: a 5yz reply ("permanent negative
// completion") is wrapped with channel.Permanent; 4yz replies ("transient
// negative completion"), connection failures, TLS failures and timeouts are
// transient. An invalid target address is permanent too. docs/channels.md has
// the table.
package mail

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// Channel delivers messages by SMTP. It implements channel.Channel and is
// safe for concurrent use; Close ends its sessions.
type Channel struct {
	cfg    Config
	addr   string
	domain string // of From, for Message-IDs
	client *gomail.Client
	tls    *tls.Config
	slots  chan struct{} // one token per session in use

	mu     sync.Mutex
	idle   []*session // most recently used last
	closed bool
}

var _ channel.Channel = (*Channel)(nil)

// session is one open SMTP session. raw is the TCP connection under any TLS
// layer; closing it aborts whatever the session is doing.
type session struct {
	smtp *smtp.Client
	raw  net.Conn
	used time.Time
}

// New returns a channel for cfg. It fails when cfg is invalid or the CA file
// cannot be read. It does not connect: the first Send does.
func New(cfg Config) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail config: %w", err)
	}
	cfg = cfg.withDefaults()
	from, _ := netmail.ParseAddress(cfg.From) // checked by Validate
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	roots := cfg.RootCAs
	if roots == nil && cfg.CAFile != "" {
		var err error
		if roots, err = loadCA(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("mail config: ca_file: %w", err)
		}
	}
	c := &Channel{
		cfg:    cfg,
		addr:   net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		domain: domain,
		tls:    &tls.Config{ServerName: cfg.Host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		slots:  make(chan struct{}, cfg.MaxConnections),
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(c.tls),
		gomail.WithDialContextFunc(c.dial),
		gomail.WithoutNoop(), // liveness is handled by the retry on a dead reused session
	}
	switch cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL()) // c.dial does the handshake
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	client, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail client: %w", err)
	}
	c.client = client
	return c, nil
}

// Type returns "mail".
func (c *Channel) Type() string { return vigil.ChannelMail }

// Send mails m to target, a bare address like ops@example.com. It returns nil
// once the server accepted the message (250 after DATA). Errors are wrapped
// with channel.Permanent for an invalid target or a 5yz reply; anything else
// (4yz, connection, TLS, timeout, ctx) is transient. Send waits for a free
// session while ctx allows.
func (c *Channel) Send(ctx context.Context, target string, m channel.Message) error {
	msg, err := c.message(target, m)
	if err != nil {
		return channel.Permanent(err)
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("mail: waiting for a free session: %w", ctx.Err())
	}
	defer func() { <-c.slots }()

	s, reused, err := c.session(ctx)
	for {
		if err != nil {
			return classify(fmt.Errorf("mail: connect to %s: %w", c.addr, err))
		}
		alive, sendErr := c.deliver(ctx, s, msg)
		if sendErr == nil {
			if alive {
				c.release(s)
			}
			return nil
		}
		s.close()
		if ctx.Err() != nil {
			return fmt.Errorf("mail: send to %s: %w (%w)", c.addr, ctx.Err(), sendErr)
		}
		if !reused || !deadSession(sendErr) {
			return classify(fmt.Errorf("mail: send to %s: %w", c.addr, sendErr))
		}
		// The server dropped the idle session before it took anything:
		// try once more on a new one.
		reused = false
		s, err = c.connect(ctx)
	}
}

// Close ends every idle session with QUIT; sessions in use end when their
// Send returns. Send after Close still works, without reuse.
func (c *Channel) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, s := range idle {
		s.quit()
	}
	return nil
}

// MessageID returns the Message-ID (RFC 5322 §3.6.4) of the mail for a
// delivery job: "<" + the first 32 hex digits of SHA-256(id) + "@" + domain +
// ">". The same job always gets the same Message-ID, and the hash keeps the
// job id's own characters out of the header.
func MessageID(id, domain string) string {
	sum := sha256.Sum256([]byte(id))
	return "<" + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

// message builds the mail. Its errors are about the target or the content and
// cannot be fixed by retrying.
func (c *Channel) message(target string, m channel.Message) (*gomail.Msg, error) {
	a, err := netmail.ParseAddress(target)
	if err != nil || a.Name != "" {
		return nil, fmt.Errorf("mail: target %q is not a bare e-mail address", target)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(c.cfg.From); err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(a.Address); err != nil {
		return nil, fmt.Errorf("mail: to: %w", err)
	}
	msg.Subject(oneLine(m.Title))
	msg.SetDateWithValue(time.Now())
	id := MessageID(m.ID, c.domain)
	msg.SetMessageIDWithValue(id[1 : len(id)-1])
	msg.SetUserAgent("vigil")
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Vigil-Level", m.Level.String())
	if ids, services := alertHeaders(m.Alerts); len(ids) > 0 {
		msg.SetGenHeader("X-Vigil-Alert", strings.Join(ids, ", "))
		if len(services) > 0 {
			msg.SetGenHeader("X-Vigil-Service", strings.Join(services, ", "))
		}
	}
	body := m.Body
	if m.URL != "" && !strings.Contains(body, m.URL) {
		body = strings.TrimRight(body, "\n") + "\n\n" + m.URL + "\n"
	}
	msg.SetBodyString(gomail.TypeTextPlain, body)
	return msg, nil
}

// alertHeaders lists the alert ids and the distinct services, in order.
func alertHeaders(alerts []vigil.Alert) (ids, services []string) {
	for _, a := range alerts {
		ids = append(ids, oneLine(a.ID))
		if a.Service != "" && !slices.Contains(services, oneLine(a.Service)) {
			services = append(services, oneLine(a.Service))
		}
		for _, s := range a.Services {
			if !slices.Contains(services, oneLine(s)) {
				services = append(services, oneLine(s))
			}
		}
	}
	return ids, services
}

// oneLine replaces control characters (CR, LF, TAB, ...) with spaces: a
// header value is one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// session returns an idle session (reused = true) or dials a new one.
// Sessions idle for longer than IdleTimeout are closed, not reused.
func (c *Channel) session(ctx context.Context) (*session, bool, error) {
	now := time.Now()
	c.mu.Lock()
	var stale []*session
	var s *session
	for len(c.idle) > 0 && s == nil {
		last := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if now.Sub(last.used) > c.cfg.IdleTimeout {
			stale = append(stale, last)
			continue
		}
		s = last
	}
	c.mu.Unlock()
	for _, st := range stale {
		go st.quit() // ends within a second; the delivery need not wait
	}
	if s != nil {
		return s, true, nil
	}
	s, err := c.connect(ctx)
	return s, false, err
}

// release puts a healthy session back for reuse.
func (c *Channel) release(s *session) {
	s.used = time.Now()
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.cfg.MaxConnections {
		c.mu.Unlock()
		s.quit()
		return
	}
	c.idle = append(c.idle, s)
	c.mu.Unlock()
}

// dialKey carries a *dialed through go-mail's dial to c.dial.
type dialKey struct{}

// dialed is what c.dial hands back to connect: the raw connection, and the
// stop function of the watcher that closes it when the Send's ctx ends.
type dialed struct {
	ctx  context.Context
	raw  net.Conn
	stop func() bool
}

// connect dials a session: TCP, TLS (implicit or STARTTLS), EHLO and AUTH,
// all aborted when ctx ends.
func (c *Channel) connect(ctx context.Context) (*session, error) {
	d := &dialed{ctx: ctx}
	client, err := c.client.DialToSMTPClientWithContext(context.WithValue(ctx, dialKey{}, d))
	if d.stop != nil && !d.stop() {
		// ctx ended during the handshake and closed the connection.
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if err != nil {
		if d.raw != nil {
			_ = d.raw.Close()
		}
		return nil, err
	}
	return &session{smtp: client, raw: d.raw}, nil
}

// dial is go-mail's DialContextFunc: a TCP connection, with the TLS handshake
// for implicit TLS, watched by the Send's context.
func (c *Channel) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if c.cfg.TLS == TLSImplicit {
		tc := tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	if d, ok := ctx.Value(dialKey{}).(*dialed); ok {
		d.raw = raw
		d.stop = context.AfterFunc(d.ctx, func() { _ = raw.Close() })
	}
	return conn, nil
}

// deliver sends msg over s. alive is false when the session must not be
// reused (ctx ended and closed it).
func (c *Channel) deliver(ctx context.Context, s *session, msg *gomail.Msg) (alive bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = s.raw.Close() })
	err = c.client.SendWithSMTPClient(s.smtp, msg)
	return stop(), err
}

// close drops the session without QUIT.
func (s *session) close() { _ = s.raw.Close() }

// quit ends the session politely (QUIT, RFC 5321 §4.1.1.10), waiting at most
// a second for the reply.
func (s *session) quit() {
	_ = s.raw.SetDeadline(time.Now().Add(time.Second))
	_ = s.smtp.Quit()
	_ = s.raw.Close()
}

// replyCode returns the SMTP reply code err carries, or 0 when it carries
// none (a connection or TLS failure, a timeout).
func replyCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) {
		if code := se.ErrorCode(); code != 0 {
			return code
		}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// classify marks err permanent when it carries a 5yz reply (RFC 5321
// §4.2.1); everything else stays transient.
func classify(err error) error {
	if code := replyCode(err); code >= 500 && code <= 599 {
		return channel.Permanent(err)
	}
	return err
}

// deadSession reports whether err says a reused session had died before the
// server accepted anything: go-mail failed at its connection check or at
// MAIL FROM, with a broken connection or a 421 (the server closing an idle
// session, RFC 5321 §3.8). Retrying on a new session cannot duplicate mail.
func deadSession(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	if se.Reason != gomail.ErrConnCheck && se.Reason != gomail.ErrSMTPMailFrom {
		return false
	}
	code := replyCode(err)
	return code == 0 || code == 421
}
