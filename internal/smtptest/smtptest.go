// Package smtptest runs a real SMTP server inside the test process, built on
// github.com/emersion/go-smtp, for tests and benchmarks of everything that
// sends mail. It listens on 127.0.0.1 with a random port, records every
// message it accepts, and can be told to misbehave the way real relays do:
//
//   - reply with a transient (4xx) or permanent (5xx) code at EHLO, MAIL,
//     RCPT or DATA, for the next n commands or until Heal (Fail);
//   - hold a command until the test releases it (Block), to test deadlines
//     without sleeping;
//   - be down: refuse connections, then come back on the same port (Down, Up);
//   - require AUTH PLAIN with a user and password (WithAuth), offer STARTTLS
//     (WithSTARTTLS) or speak implicit TLS from the first byte
//     (WithImplicitTLS) with a certificate from a CA generated per server, whose
//     pool the test gets from CertPool or CAFile.
//
// It counts accepted TCP connections (Conns) and stamps each message with the
// connection that carried it (Message.Conn), so a test can prove that a client
// reuses one SMTP session for many messages. Waiting for messages never sleeps:
// Wait and WaitContext block on a channel that is signalled per message.
//
// A typical test:
//
//	srv := smtptest.New(t, smtptest.WithSTARTTLS(), smtptest.WithAuth("u", "p"))
//	// ... point the client at srv.Host(), srv.Port(), trust srv.CertPool() ...
//	msgs := srv.Wait(t, 1)
//	if got := msgs[0].Header.Get("Subject"); got != "down" { ... }
package smtptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Stage names the SMTP command at which Fail and Block act.
type Stage string

// The stages, named after the SMTP commands of RFC 5321 §4.1.1. A failure at
// StageHello answers EHLO/HELO (the client cannot even start a session); at
// StageData the message is read in full and then refused, as relays that scan
// content do.
const (
	StageHello Stage = "EHLO"
	StageMail  Stage = "MAIL"
	StageRcpt  Stage = "RCPT"
	StageData  Stage = "DATA"
)

// WaitTimeout bounds Wait: a test that waits longer for its messages fails.
const WaitTimeout = 10 * time.Second

// Message is one message the server accepted (250 after DATA).
type Message struct {
	// From is the envelope sender (MAIL FROM), To the envelope recipients
	// (RCPT TO), without angle brackets.
	From string
	To   []string
	// Data is the message exactly as received after DATA (RFC 5322, CRLF
	// line ends, dot-stuffing removed).
	Data []byte
	// Header and Body are Data parsed by net/mail. Body is still in its
	// transfer encoding; Text decodes it.
	Header mail.Header
	Body   []byte
	// Conn numbers the TCP connection that carried the message, from 1 in
	// the order the server accepted them; equal numbers mean one reused
	// session.
	Conn int
	// TLS reports whether the session was encrypted (STARTTLS or implicit
	// TLS) when the message was sent.
	TLS bool
	// User is the AUTH PLAIN user name of the session, "" when none.
	User string
}

// Server is a running test SMTP server. Its methods are safe for concurrent
// use.
type Server struct {
	tb   testing.TB
	addr string // 127.0.0.1:port, fixed for the server's life

	user, pass  string
	starttls    bool
	implicitTLS bool
	requireTLS  bool
	discard     bool
	maxBytes    int64
	tlsConfig   *tls.Config
	pool        *x509.CertPool
	caPEM       []byte
	serveDone   chan struct{}
	mu          sync.Mutex
	srv         *smtp.Server // nil while down
	ln          net.Listener
	conns       int
	connIDs     map[string]int // remote address → connection number
	msgs        []Message
	received    int
	changed     chan struct{} // closed and replaced on every accepted message
	failures    map[Stage]*failure
	gates       map[Stage]*Gate
	closed      bool
}

type failure struct {
	code int
	left int // commands still to fail; < 0: until Heal
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server offer AUTH PLAIN (RFC 4954, RFC 4616) and refuse
// MAIL with 530 5.7.0 until a client has authenticated as user with password.
// Wrong credentials get 535 5.7.8. Without TLS the server still offers AUTH
// (clients only send PLAIN in clear text to localhost).
func WithAuth(user, password string) Option {
	return func(s *Server) { s.user, s.pass = user, password }
}

// WithSTARTTLS makes the server offer STARTTLS (RFC 3207) with its generated
// certificate.
func WithSTARTTLS() Option { return func(s *Server) { s.starttls = true } }

// WithImplicitTLS makes the server speak TLS from the first byte (RFC 8314
// "submissions", port 465 style) with its generated certificate.
func WithImplicitTLS() Option { return func(s *Server) { s.implicitTLS = true } }

// WithRequireTLS makes the server refuse MAIL with 530 5.7.0 on a session that
// is not encrypted, proving that a client did not skip STARTTLS. It implies
// WithSTARTTLS unless WithImplicitTLS is given.
func WithRequireTLS() Option { return func(s *Server) { s.requireTLS = true } }

// WithDiscard makes the server count accepted messages without keeping them,
// for benchmarks that send many: Received and Wait still work, Messages
// returns nothing.
func WithDiscard() Option { return func(s *Server) { s.discard = true } }

// WithMaxMessageBytes sets the SIZE limit (RFC 1870) in bytes; a larger message
// is refused with 552 5.3.4. The default is 10 MiB.
func WithMaxMessageBytes(n int64) Option { return func(s *Server) { s.maxBytes = n } }

// New starts a server on 127.0.0.1 with a random port. It is closed when the
// test ends. New fails the test if the server cannot start.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb:       tb,
		maxBytes: 10 << 20,
		connIDs:  map[string]int{},
		changed:  make(chan struct{}),
		failures: map[Stage]*failure{},
		gates:    map[Stage]*Gate{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.requireTLS && !s.implicitTLS {
		s.starttls = true
	}
	if s.starttls || s.implicitTLS {
		if err := s.makeCerts(); err != nil {
			tb.Fatalf("smtptest: certificates: %v", err)
		}
	}
	l, err := new(net.ListenConfig).Listen(tb.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	tb.Cleanup(s.Close)
	return s
}

// Addr returns the server's address, "127.0.0.1:port". It stays the same
// across Down and Up.
func (s *Server) Addr() string { return s.addr }

// Host returns "127.0.0.1".
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.addr)
	return h
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// CertPool returns a pool holding the CA that signed the server's certificate
// (valid for 127.0.0.1, ::1 and localhost), or nil when the server has no TLS.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// CAPEM returns that CA certificate in PEM, or nil when the server has no TLS.
func (s *Server) CAPEM() []byte { return s.caPEM }

// CAFile writes CAPEM to a file under tb.TempDir() and returns its path, for
// clients configured with a CA file.
func (s *Server) CAFile(tb testing.TB) string {
	tb.Helper()
	if s.caPEM == nil {
		tb.Fatal("smtptest: CAFile on a server without TLS")
	}
	p := filepath.Join(tb.TempDir(), "smtptest-ca.pem")
	if err := os.WriteFile(p, s.caPEM, 0o600); err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	return p
}

// Conns returns how many TCP connections the server has accepted so far,
// across Down and Up.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Received returns how many messages the server has accepted so far.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Messages returns a copy of the accepted messages in the order they were
// accepted (nothing under WithDiscard).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitContext blocks until the server has accepted at least n messages in
// all, and returns the recorded messages (nil under WithDiscard). It returns
// ctx's error, wrapped, if ctx ends first.
func (s *Server) WaitContext(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		got, ch := s.received, s.changed
		if got >= n {
			out := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("smtptest: %d of %d messages received: %w", got, n, ctx.Err())
		}
	}
}

// Wait is WaitContext for a test: it fails tb (from the calling goroutine,
// which must be the test's) if fewer than n messages arrive within
// WaitTimeout.
func (s *Server) Wait(tb testing.TB, n int) []Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	msgs, err := s.WaitContext(ctx, n)
	if err != nil {
		tb.Fatal(err)
	}
	return msgs
}

// Fail makes the next n commands at stage answer with reply code (a 4xx or
// 5xx of RFC 5321 §4.2, such as 421, 450, 451, 452, 550, 552, 554); n ≤ 0
// means every command until Heal. A 421 also closes the connection, as RFC
// 5321 §3.8 has servers do. A later Fail for the same stage replaces an
// earlier one.
func (s *Server) Fail(stage Stage, code, n int) {
	if n <= 0 {
		n = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[stage] = &failure{code: code, left: n}
}

// Heal removes every failure set by Fail and releases every Gate.
func (s *Server) Heal() {
	s.mu.Lock()
	gates := s.gates
	s.failures = map[Stage]*failure{}
	s.gates = map[Stage]*Gate{}
	s.mu.Unlock()
	for _, g := range gates {
		g.Release()
	}
}

// Gate holds commands at one stage until Release.
type Gate struct {
	reached     chan struct{}
	reachedOnce sync.Once
	release     chan struct{}
	releaseOnce sync.Once
}

// Reached is closed once a command has arrived at the gate and is held.
func (g *Gate) Reached() <-chan struct{} { return g.reached }

// Release lets every held and later command pass. It is safe to call twice.
func (g *Gate) Release() { g.releaseOnce.Do(func() { close(g.release) }) }

// Block holds every command at stage (after it is read, before it is
// answered) until the returned gate is released, Heal is called or the server
// closes. It lets a test observe a client's deadline without sleeping: wait
// for Reached, then cancel the client's context.
func (s *Server) Block(stage Stage) *Gate {
	g := &Gate{reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	old := s.gates[stage]
	s.gates[stage] = g
	s.mu.Unlock()
	if old != nil {
		old.Release()
	}
	return g
}

// Down closes the listener and every open connection: clients get
// "connection refused" until Up. It is a no-op while down.
func (s *Server) Down() {
	s.mu.Lock()
	srv, ln, done := s.srv, s.ln, s.serveDone
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	// go-smtp closes only the listeners its Serve has registered; one that
	// has not started yet would block in Accept forever.
	_ = ln.Close()
	<-done
}

// Up listens again on the same address after Down and fails the test if the
// port cannot be bound. It is a no-op while up.
func (s *Server) Up() {
	s.tb.Helper()
	s.mu.Lock()
	skip := s.srv != nil || s.closed
	s.mu.Unlock()
	if skip {
		return
	}
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", s.addr)
	if err != nil {
		s.tb.Fatalf("smtptest: listen again on %s: %v", s.addr, err)
	}
	s.serve(l)
}

// Close stops the server for good and releases held commands. New registers
// it with tb.Cleanup; calling it again is harmless.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Heal()
	s.Down()
}

func (s *Server) serve(l net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "smtptest.localhost"
	srv.MaxMessageBytes = s.maxBytes
	srv.MaxRecipients = 100
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if s.starttls {
		srv.TLSConfig = s.tlsConfig
	}
	var ln net.Listener = &countingListener{Listener: l, s: s}
	if s.implicitTLS {
		ln = tls.NewListener(ln, s.tlsConfig)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.serveDone = srv, l, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// countingListener numbers accepted connections by remote address.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conns++
	l.s.connIDs[c.RemoteAddr().String()] = l.s.conns
	l.s.mu.Unlock()
	return c, nil
}

// check holds a command at a gate and returns the injected failure, if any.
// A 421 closes the connection after the reply, like a real server.
func (s *Server) check(stage Stage, c *smtp.Conn) error {
	s.mu.Lock()
	g := s.gates[stage]
	s.mu.Unlock()
	if g != nil {
		g.reachedOnce.Do(func() { close(g.reached) })
		<-g.release
	}
	s.mu.Lock()
	f := s.failures[stage]
	var code int
	if f != nil && f.left != 0 {
		code = f.code
		if f.left > 0 {
			f.left--
		}
	}
	s.mu.Unlock()
	if code == 0 {
		return nil
	}
	if code == 421 {
		c.Reject() // writes 421 4.4.5 and closes
	}
	return &smtp.SMTPError{
		Code:         code,
		EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0},
		Message:      "smtptest: injected failure at " + string(stage),
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if err := b.s.check(StageHello, c); err != nil {
		return nil, err
	}
	b.s.mu.Lock()
	id := b.s.connIDs[c.Conn().RemoteAddr().String()]
	b.s.mu.Unlock()
	return &session{s: b.s, c: c, conn: id}, nil
}

// session is one SMTP session; go-smtp calls it from the connection's
// goroutine only.
type session struct {
	s    *Server
	c    *smtp.Conn
	conn int
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		okUser := subtle.ConstantTimeCompare([]byte(user), []byte(ss.s.user)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(pass), []byte(ss.s.pass)) == 1
		if !okUser || !okPass || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) tls() bool {
	_, ok := ss.c.TLSConnectionState()
	return ok
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.requireTLS && !ss.tls() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if ss.s.user != "" && ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if err := ss.s.check(StageMail, ss.c); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.check(StageRcpt, ss.c); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err // too large, or the connection broke
	}
	if err := ss.s.check(StageData, ss.c); err != nil {
		return err
	}
	m := Message{From: ss.from, To: ss.to, Data: data, Conn: ss.conn, TLS: ss.tls(), User: ss.user}
	if pm, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = pm.Header
		m.Body, _ = io.ReadAll(pm.Body)
	}
	s := ss.s
	s.mu.Lock()
	s.received++
	if !s.discard {
		s.msgs = append(s.msgs, m)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// makeCerts generates a CA and a server certificate for 127.0.0.1, ::1 and
// localhost, valid from an hour ago for a day.
func (s *Server) makeCerts() error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	s.pool = x509.NewCertPool()
	s.pool.AddCert(ca)
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s.tlsConfig = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	return nil
}
