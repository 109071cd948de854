// Package webhook is the notifier's webhook channel: it sends one
// channel.Message as one JSON request (Payload) to the target URL.
//
// Each request carries
//
//	Content-Type: application/json
//	X-Vigil-Delivery: <Message.ID, stable per delivery job: dedup on it>
//	X-Vigil-Timestamp: <Unix seconds when this attempt was sent>
//	X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with Config.Secret>
//
// The signature works like GitHub's X-Hub-Signature-256: the receiver
// computes the HMAC of the exact bytes it received with the shared secret
// and compares in constant time (Verify does this). The body repeats the
// timestamp as "sent_at", so the signed bytes pin it: a receiver that
// rejects old sent_at values and ids it has seen cannot be replayed to.
//
// Answers are classified as RFC 9110 describes them: 2xx is delivered; 5xx,
// 429 Too Many Requests and 408 Request Timeout, connection failures and
// timeouts are transient; redirects (never followed: a POST must not turn
// into a GET) and every other 4xx are channel.Permanent.
//
// Targets come from whoever registers a service, so the default client
// checks every address it connects to, after DNS resolution (a
// net.Dialer ControlContext): loopback, link-local (cloud metadata),
// unspecified and multicast addresses are refused unless
// Config.AllowedNetworks lists them, private ones too with
// Config.DenyPrivate. Checking at dial time, not before, is what defeats
// DNS rebinding (a name that resolves to a public address for the check
// and to 127.0.0.1 for the connection).
package webhook

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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// Header names of every request.
const (
	HeaderSignature = "X-Vigil-Signature"
	HeaderDelivery  = "X-Vigil-Delivery"
	HeaderTimestamp = "X-Vigil-Timestamp"
)

// Payload is the JSON body of every request. Alerts are the alerts the
// message tells about, in vigil.Alert's JSON form without their owner (an
// owner's target may be someone else's Pushover key or address).
type Payload struct {
	// ID is the delivery job's id, also in X-Vigil-Delivery.
	ID string `json:"id"`
	// Title and Body are the rendered message, plain UTF-8 text.
	Title string `json:"title"`
	Body  string `json:"body"`
	// Level is the severity as a number (0 debug … 4 critical, higher is
	// worse) and LevelName its name.
	Level     vigil.Level `json:"level"`
	LevelName string      `json:"level_name"`
	// URL links to the service or alert in vigil; may be empty.
	URL string `json:"url,omitempty"`
	// At is when the first alert was raised; SentAt when this attempt was
	// sent (RFC 3339, UTC).
	At     time.Time     `json:"at,omitzero"`
	SentAt time.Time     `json:"sent_at"`
	Alerts []vigil.Alert `json:"alerts"`
}

// maxAnswer bounds how much of an answer is read for the error message, in
// bytes.
const maxAnswer = 4 << 10

// Channel delivers messages as HTTP requests. It implements channel.Channel
// and is safe for concurrent use.
type Channel struct {
	cfg    Config
	client *http.Client
}

var _ channel.Channel = (*Channel)(nil)

// New returns a channel for cfg. It fails when cfg is invalid.
func New(cfg Config) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	cfg = cfg.withDefaults()
	client := cfg.HTTPClient
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.Proxy = nil // a proxy would connect to the target, past the address check
		t.DialContext = cfg.policy().dialer().DialContext
		client = &http.Client{
			Transport: t,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &Channel{cfg: cfg, client: client}, nil
}

// Type returns "webhook".
func (c *Channel) Type() string { return vigil.ChannelWebhook }

// Send sends m to target, an absolute http or https URL. It returns nil once
// the receiver answered 2xx. A malformed target, a host not in
// AllowedHosts, an address the default client refuses to connect to (a
// *BlockedError, see Config.CheckAddr), a redirect and a 4xx other than 408
// and 429 are channel.Permanent; everything else is transient.
func (c *Channel) Send(ctx context.Context, target string, m channel.Message) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return channel.Permanent(errors.New("webhook: target is not an absolute http or https URL"))
	}
	if !c.cfg.allowed(u) {
		return channel.Permanent(fmt.Errorf("webhook: host %q is not in allowed_hosts", u.Hostname()))
	}
	now := time.Now().UTC().Truncate(time.Second)
	body, err := Encode(m, now)
	if err != nil {
		return channel.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return channel.Permanent(fmt.Errorf("webhook: request: %w", err))
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-webhook")
	req.Header.Set(HeaderDelivery, oneLine(m.ID))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if c.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(c.cfg.Secret, body))
	}
	resp, err := c.client.Do(req)
	if blocked := (*BlockedError)(nil); errors.As(err, &blocked) {
		return channel.Permanent(fmt.Errorf("webhook: target host %q: %w", u.Hostname(), blocked))
	}
	if err != nil {
		return fmt.Errorf("webhook: %w", err) // the client strips passwords from the URL
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	err = fmt.Errorf("webhook: %s answered %s%s", u.Redacted(), resp.Status, snippet(answer))
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return err
	case resp.StatusCode >= 300: // 3xx, the other 4xx
		return channel.Permanent(err)
	}
	return err // a 1xx as the final answer: a confused proxy, maybe not for long
}

// Encode returns the JSON body for m sent at sentAt: a Payload.
func Encode(m channel.Message, sentAt time.Time) ([]byte, error) {
	alerts := make([]vigil.Alert, len(m.Alerts))
	for i, a := range m.Alerts {
		a.Owner = nil
		alerts[i] = a
	}
	b, err := json.Marshal(Payload{
		ID: m.ID, Title: m.Title, Body: m.Body, Level: m.Level, LevelName: m.Level.String(),
		URL: m.URL, At: m.At.UTC(), SentAt: sentAt.UTC(), Alerts: alerts,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: encode: %w", err)
	}
	return b, nil
}

// Sign returns the X-Vigil-Signature value for body: "sha256=" and the hex
// HMAC-SHA256 (RFC 2104) of body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header, an X-Vigil-Signature value, is the
// signature of body with secret. It compares in constant time and is what a
// receiver written in Go calls with the raw request body, before decoding
// it. An empty secret verifies nothing.
func Verify(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// snippet quotes the start of an answer's body for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(oneLine(strings.ToValidUTF8(string(b), "")))
	if s == "" {
		return ""
	}
	if utf8.RuneCountInString(s) > 200 {
		s = string([]rune(s)[:200]) + "…"
	}
	return ": " + strconv.Quote(s)
}

// oneLine replaces control characters with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
