// Package pushovertest runs an httptest server that speaks the Pushover
// Message API (https://pushover.net/api) and enforces its documented
// contract, for tests and benchmarks of anything that sends to Pushover.
//
// The server accepts POST /1/messages.json with form-encoded
// (application/x-www-form-urlencoded or multipart/form-data) or JSON
// parameters and checks them as the API documents: token and user are 30
// characters of [A-Za-z0-9] and known to the server, message is present and
// at most 1024 characters, title at most 250, url at most 512, url_title at
// most 100, priority is -2..2, priority 2 comes with retry (≥ 30) and expire
// (≤ 10800), html and monospace are not both set, sound is a known sound,
// device names are at most 25 of [A-Za-z0-9_-], timestamp and ttl are
// numbers. A valid request is answered 200 {"status":1,"request":"…"} (plus
// "receipt" for priority 2) and recorded; an invalid one 400 with
// {"<param>":"invalid","errors":[…],"status":0,"request":"…"}; one over the
// monthly limit 429. Every answer carries X-Limit-App-Limit,
// X-Limit-App-Remaining and X-Limit-App-Reset.
//
// On demand it answers failures (Fail: 500, 503, 429, …), holds requests
// until released (Block), or answers after a fixed latency (SetLatency, for
// benchmarks). It counts TCP connections (Conns) and the most requests it
// served at once (MaxInFlight), so a test can check keep-alive reuse and the
// API's "no more than 2 concurrent connections" rule.
package pushovertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Keys the server knows unless WithToken or WithUsers say otherwise. They are
// well-formed (30 characters of [A-Za-z0-9]), like the API's examples.
const (
	Token = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
	User  = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
	Group = "gznej3rKEVAvPUxu9vvNnqpmZpokzF"
)

// Path is the messages endpoint's path; the full URL is Server.URL().
const Path = "/1/messages.json"

// WaitTimeout bounds Wait.
const WaitTimeout = 10 * time.Second

// DefaultLimit is the monthly message limit of a free application.
const DefaultLimit = 10000

// Sounds are the built-in sounds (https://pushover.net/api#sounds).
var Sounds = []string{
	"pushover", "bike", "bugle", "cashregister", "classical", "cosmic", "falling", "gamelan",
	"incoming", "intermission", "magic", "mechanical", "pianobar", "siren", "spacealarm",
	"tugboat", "alien", "climb", "persistent", "echo", "updown", "vibrate", "none",
}

// Message is one accepted message.
type Message struct {
	Token, User, Device string
	Title, Message      string
	URL, URLTitle       string
	Priority            int
	Retry, Expire       int // seconds; priority 2 only
	Timestamp           int64
	TTL                 int
	Sound               string
	HTML, Monospace     bool
	// Request is the request id the server answered; Receipt the receipt
	// for priority 2.
	Request, Receipt string
	// Form is every parameter as received; ContentType the request's.
	Form        url.Values
	ContentType string
}

// Server is a running fake of the Pushover API. Its methods are safe for
// concurrent use.
type Server struct {
	srv *httptest.Server

	token  string
	users  []string
	sounds []string

	mu        sync.Mutex
	limit     int
	used      int
	msgs      []Message
	requests  int
	changed   chan struct{}
	failures  []failure
	gate      *Gate
	latency   time.Duration
	conns     int
	inFlight  int
	maxFlight int
}

type failure struct {
	status int
	left   int // < 0: until Heal
}

// Option configures a Server.
type Option func(*Server)

// WithToken sets the only application token the server accepts (default
// Token).
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithUsers sets the user and group keys the server knows (default User and
// Group); any other well-formed key is "user identifier is invalid".
func WithUsers(keys ...string) Option { return func(s *Server) { s.users = keys } }

// WithSounds adds custom sounds to the built-in ones.
func WithSounds(names ...string) Option {
	return func(s *Server) { s.sounds = append(s.sounds, names...) }
}

// WithLimit sets the monthly message limit (default DefaultLimit); a message
// to a group key counts once, like one to a user.
func WithLimit(n int) Option { return func(s *Server) { s.limit = n } }

// New starts a server on 127.0.0.1 with a random port; it is closed when the
// test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		token:   Token,
		users:   []string{User, Group},
		sounds:  slices.Clone(Sounds),
		limit:   DefaultLimit,
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.srv.Start()
	tb.Cleanup(s.Close)
	return s
}

// URL returns the messages endpoint, "http://127.0.0.1:port/1/messages.json":
// the base_url of a client under test.
func (s *Server) URL() string { return s.srv.URL + Path }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down, releasing held requests.
func (s *Server) Close() {
	s.Heal()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Messages returns a copy of the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Received returns how many messages were accepted.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Requests returns how many requests arrived, accepted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Conns returns how many TCP connections the server accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// MaxInFlight returns the most requests the server was serving at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxFlight
}

// WaitContext blocks until at least n messages were accepted and returns
// them, or returns ctx's error, wrapped.
func (s *Server) WaitContext(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.changed
		if got >= n {
			out := slices.Clone(s.msgs)
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("pushovertest: %d of %d messages received: %w", got, n, ctx.Err())
		}
	}
}

// Wait is WaitContext for a test: it fails tb (from the test's goroutine) if
// fewer than n messages arrive within WaitTimeout.
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

// Fail makes the next n requests (n ≤ 0: every request until Heal) answer
// status with an error body, before any check: 500 and 503 as when
// Pushover has "temporary problems", 429 as over the monthly limit, or any
// other status. Failures queue: Fail(500, 1) then Fail(429, 1) answers 500
// and then 429.
func (s *Server) Fail(status, n int) {
	if n <= 0 {
		n = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status: status, left: n})
}

// SetLatency makes every request wait d before it is answered, to model the
// real API's round trip in benchmarks. Tests that need a slow server use
// Block instead.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Heal removes every failure and releases the gate.
func (s *Server) Heal() {
	s.mu.Lock()
	g := s.gate
	s.failures, s.gate = nil, nil
	s.mu.Unlock()
	if g != nil {
		g.Release()
	}
}

// Gate holds requests until Release.
type Gate struct {
	reached     chan struct{}
	reachedOnce sync.Once
	release     chan struct{}
	releaseOnce sync.Once
}

// Reached is closed once a request is held at the gate.
func (g *Gate) Reached() <-chan struct{} { return g.reached }

// Release lets held and later requests pass; calling it twice is harmless.
func (g *Gate) Release() { g.releaseOnce.Do(func() { close(g.release) }) }

// Block holds every request before it is answered until the gate is
// released, Heal is called or the server closes (or the client gives up).
func (s *Server) Block() *Gate {
	g := &Gate{reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	old := s.gate
	s.gate = g
	s.mu.Unlock()
	if old != nil {
		old.Release()
	}
	return g
}

// answer is the JSON body of every answer.
type answer struct {
	Status  int      `json:"status"`
	Request string   `json:"request"`
	Receipt string   `json:"receipt,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.inFlight++
	s.maxFlight = max(s.maxFlight, s.inFlight)
	gate, latency := s.gate, s.latency
	status := 0
	if len(s.failures) > 0 {
		f := &s.failures[0]
		status = f.status
		if f.left > 0 {
			if f.left--; f.left == 0 {
				s.failures = s.failures[1:]
			}
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if gate != nil {
		gate.reachedOnce.Do(func() { close(gate.reached) })
		select {
		case <-gate.release:
		case <-r.Context().Done():
			return
		}
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if status != 0 {
		msg := "pushovertest: injected failure"
		if status == http.StatusTooManyRequests {
			msg = "application has reached its monthly message limit"
		}
		s.reply(w, status, answer{Errors: []string{msg}}, nil)
		return
	}
	if r.URL.Path != Path {
		s.reply(w, http.StatusNotFound, answer{Errors: []string{"not found"}}, nil)
		return
	}
	if r.Method != http.MethodPost {
		s.reply(w, http.StatusMethodNotAllowed, answer{Errors: []string{"the POST method is required"}}, nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 6<<20) // attachments are limited to 5 MB
	form, err := parse(r)
	if err != nil {
		s.reply(w, http.StatusBadRequest, answer{Errors: []string{err.Error()}}, nil)
		return
	}
	m, fields, errs := s.check(form)
	m.ContentType = r.Header.Get("Content-Type")
	if len(errs) > 0 {
		s.reply(w, http.StatusBadRequest, answer{Errors: errs}, fields)
		return
	}
	s.mu.Lock()
	if s.used >= s.limit {
		s.mu.Unlock()
		s.reply(w, http.StatusTooManyRequests, answer{Errors: []string{"application has reached its monthly message limit"}}, nil)
		return
	}
	s.used++
	m.Request = requestID()
	if m.Priority == 2 {
		m.Receipt = randomKey()
	}
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.reply(w, http.StatusOK, answer{Status: 1, Request: m.Request, Receipt: m.Receipt}, nil)
}

// parse reads the parameters of a form-encoded, multipart or JSON body.
func parse(r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("content type %q is not supported", r.Header.Get("Content-Type"))
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, fmt.Errorf("body is not form-encoded: %w", err)
		}
		return r.PostForm, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(6 << 20); err != nil {
			return nil, fmt.Errorf("body is not multipart/form-data: %w", err)
		}
		return r.MultipartForm.Value, nil
	case "application/json":
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return nil, fmt.Errorf("body is not a JSON object: %w", err)
		}
		v := url.Values{}
		for k, x := range raw {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case float64:
				v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
			case bool:
				v.Set(k, map[bool]string{true: "1", false: "0"}[x])
			default:
				v.Set(k, fmt.Sprint(x))
			}
		}
		return v, nil
	}
	return nil, fmt.Errorf("content type %q is not supported", mt)
}

var (
	keyRE    = regexp.MustCompile(`^[A-Za-z0-9]{30}$`)
	deviceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,25}$`)
)

// check validates the parameters as the API documents them. fields maps
// each bad parameter to "invalid", as the API's answer does.
func (s *Server) check(f url.Values) (m Message, fields map[string]string, errs []string) {
	fields = map[string]string{}
	bad := func(field, format string, args ...any) {
		fields[field] = "invalid"
		errs = append(errs, fmt.Sprintf(format, args...))
	}
	m = Message{
		Token: f.Get("token"), User: f.Get("user"), Device: f.Get("device"),
		Title: f.Get("title"), Message: f.Get("message"), URL: f.Get("url"), URLTitle: f.Get("url_title"),
		Sound: f.Get("sound"), HTML: f.Get("html") == "1", Monospace: f.Get("monospace") == "1", Form: f,
	}
	if !keyRE.MatchString(m.Token) || m.Token != s.token {
		bad("token", "application token is invalid")
	}
	switch users := strings.Split(m.User, ","); {
	case m.User == "":
		bad("user", "user key is required")
	case len(users) > 50:
		bad("user", "no more than 50 users may be sent to at once")
	default:
		for _, u := range users {
			if !keyRE.MatchString(u) || !slices.Contains(s.users, u) {
				bad("user", "user identifier is invalid")
				break
			}
		}
	}
	for d := range strings.SplitSeq(m.Device, ",") {
		if m.Device != "" && !deviceRE.MatchString(d) {
			bad("device", "device name is invalid")
			break
		}
	}
	for _, p := range []struct {
		name, value string
		max         int
	}{{"message", m.Message, 1024}, {"title", m.Title, 250}, {"url", m.URL, 512}, {"url_title", m.URLTitle, 100}} {
		if !utf8.ValidString(p.value) {
			bad(p.name, "%s is not valid UTF-8", p.name)
		} else if n := utf8.RuneCountInString(p.value); n > p.max {
			bad(p.name, "%s is %d characters, the limit is %d", p.name, n, p.max)
		}
	}
	if strings.TrimSpace(m.Message) == "" {
		bad("message", "message cannot be blank")
	}
	if m.HTML && m.Monospace {
		bad("monospace", "html and monospace cannot be used together")
	}
	if m.Sound != "" && !slices.Contains(s.sounds, m.Sound) {
		bad("sound", "sound is invalid")
	}
	num := func(name string) (int64, bool) {
		v := f.Get(name)
		if v == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			bad(name, "%s must be an integer", name)
			return 0, false
		}
		return n, true
	}
	if p, ok := num("priority"); ok {
		if p < -2 || p > 2 {
			bad("priority", "priority must be -2, -1, 0, 1 or 2")
		}
		m.Priority = int(p)
	}
	retry, hasRetry := num("retry")
	expire, hasExpire := num("expire")
	if m.Priority == 2 {
		switch {
		case !hasRetry:
			bad("retry", "retry must be supplied with priority=2")
		case retry < 30:
			bad("retry", "retry must be at least 30 seconds")
		}
		switch {
		case !hasExpire:
			bad("expire", "expire must be supplied with priority=2")
		case expire < 1 || expire > 10800:
			bad("expire", "expire must be at most 10800 seconds")
		}
		m.Retry, m.Expire = int(retry), int(expire)
	}
	if ts, ok := num("timestamp"); ok {
		if ts < 0 {
			bad("timestamp", "timestamp is invalid")
		}
		m.Timestamp = ts
	}
	if ttl, ok := num("ttl"); ok {
		if ttl <= 0 {
			bad("ttl", "ttl must be a positive number of seconds")
		}
		m.TTL = int(ttl)
	}
	return m, fields, errs
}

func (s *Server) limitHeaders(w http.ResponseWriter) {
	s.mu.Lock()
	limit, used := s.limit, s.used
	s.mu.Unlock()
	now := time.Now().UTC()
	reset := time.Date(now.Year(), now.Month()+1, 1, 6, 0, 0, 0, time.UTC) // 00:00 Central Time
	w.Header().Set("X-Limit-App-Limit", strconv.Itoa(limit))
	w.Header().Set("X-Limit-App-Remaining", strconv.Itoa(max(limit-used, 0)))
	w.Header().Set("X-Limit-App-Reset", strconv.FormatInt(reset.Unix(), 10))
}

// reply writes the JSON answer with the limit headers; fields adds the
// "<param>":"invalid" members.
func (s *Server) reply(w http.ResponseWriter, status int, a answer, fields map[string]string) {
	if a.Request == "" {
		a.Request = requestID()
	}
	body := map[string]any{"status": a.Status, "request": a.Request}
	if a.Receipt != "" {
		body["receipt"] = a.Receipt
	}
	if len(a.Errors) > 0 {
		body["errors"] = a.Errors
	}
	for k, v := range fields {
		body[k] = v
	}
	s.limitHeaders(w)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// requestID returns a random UUID-shaped request id like the API's.
func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// randomKey returns 30 random characters of [A-Za-z0-9], a receipt's shape.
func randomKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
