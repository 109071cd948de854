// Package pushover is the notifier's Pushover channel: a small client of the
// Pushover Message API (https://pushover.net/api) that turns one
// channel.Message into one POST to /1/messages.json for one user or group
// key.
//
// Title, message and URL are cut to the API's limits in characters, never in
// the middle of a UTF-8 sequence. The alert level picks the priority
// (Config.Priorities); emergency priority carries retry and expire. The
// message time is when the first alert was raised, so a delivery retried
// later still shows when things happened.
//
// Errors follow the API's "Being Friendly" rules: a 4xx answer (other than
// 429) or a status other than 1 means the input is wrong and repeating it
// cannot help, so it is wrapped with channel.Permanent and carries the API's
// errors; 429 (monthly limit reached), 5xx, any other answer and connection
// failures are transient. The application token never appears in errors.
package pushover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// maxResponse bounds how much of an API answer is read, in bytes.
const maxResponse = 64 << 10

// Channel delivers messages through the Pushover API. It implements
// channel.Channel and is safe for concurrent use.
type Channel struct {
	cfg        Config
	client     *http.Client
	priorities []levelPriority

	mu     sync.Mutex
	limits Limits
}

var _ channel.Channel = (*Channel)(nil)

// Limits is the application's monthly message quota as the API last
// reported it in the X-Limit-App-Limit, X-Limit-App-Remaining and
// X-Limit-App-Reset headers (https://pushover.net/api#limits).
type Limits struct {
	Limit, Remaining int
	Reset            time.Time
}

// APIError is an answer of the API that is not a success: the HTTP status,
// the errors it listed and its request id (quote it to Pushover support).
type APIError struct {
	Status  int
	Errors  []string
	Request string
}

func (e *APIError) Error() string {
	msg := "HTTP " + strconv.Itoa(e.Status)
	if len(e.Errors) > 0 {
		msg += ": " + strings.Join(e.Errors, "; ")
	}
	if e.Request != "" {
		msg += " (request " + e.Request + ")"
	}
	return msg
}

// New returns a channel for cfg. It fails when cfg is invalid. It does not
// contact the API.
func New(cfg Config) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pushover config: %w", err)
	}
	cfg = cfg.withDefaults()
	prio, _ := cfg.priorities() // checked by Validate
	client := cfg.HTTPClient
	if client == nil {
		// Pushover asks for at most two concurrent connections, reused
		// with keep-alive (https://pushover.net/api#friendly).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxConnsPerHost, t.MaxIdleConnsPerHost = 2, 2
		client = &http.Client{Transport: t}
	}
	return &Channel{cfg: cfg, client: client, priorities: prio}, nil
}

// Type returns "pushover".
func (c *Channel) Type() string { return vigil.ChannelPushover }

// Limits returns the quota the API reported last; ok is false before the
// first answer that carried it.
func (c *Channel) Limits() (l Limits, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limits, c.limits.Limit != 0
}

// Priority returns the Pushover priority (-2..2) for level, per
// Config.Priorities.
func (c *Channel) Priority(level vigil.Level) int {
	p := c.priorities[0].priority
	for _, lp := range c.priorities {
		if lp.level > level {
			break
		}
		p = lp.priority
	}
	return p
}

// Send posts m to target, a 30-character user or group key. It returns nil
// once the API answered 200 with status 1. A target that is not a key, a 4xx
// answer other than 429 and a status other than 1 are channel.Permanent
// (an *APIError, for answers); everything else is transient.
func (c *Channel) Send(ctx context.Context, target string, m channel.Message) error {
	if !IsKey(target) {
		return channel.Permanent(errors.New("pushover: target is not a user or group key (30 letters and digits)"))
	}
	form := c.form(target, m)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL, strings.NewReader(form.Encode()))
	if err != nil {
		return channel.Permanent(fmt.Errorf("pushover: request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "vigil")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("pushover: post: %w", err)
	}
	defer resp.Body.Close()
	c.noteLimits(resp.Header)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("pushover: read answer: %w", err)
	}
	var ans struct {
		Status  int      `json:"status"`
		Request string   `json:"request"`
		Errors  []string `json:"errors"`
	}
	jsonErr := json.Unmarshal(body, &ans)
	if resp.StatusCode == http.StatusOK && jsonErr == nil && ans.Status == 1 {
		return nil
	}
	apiErr := &APIError{Status: resp.StatusCode, Errors: ans.Errors, Request: ans.Request}
	err = fmt.Errorf("pushover: %w", apiErr)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return err // monthly limit: may pass after more capacity or the reset
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return channel.Permanent(err)
	case resp.StatusCode == http.StatusOK && jsonErr == nil:
		return channel.Permanent(err) // status != 1: the input was invalid
	}
	return err // 5xx, 3xx, an unreadable 200: temporary problems
}

// form builds the request parameters (https://pushover.net/api#messages).
func (c *Channel) form(target string, m channel.Message) url.Values {
	f := url.Values{}
	f.Set("token", c.cfg.Token)
	f.Set("user", target)
	msg := strings.TrimSpace(m.Body)
	if msg == "" {
		msg = strings.TrimSpace(m.Title) // Pushover refuses an empty message
	}
	if msg == "" {
		msg = "(no details)"
	}
	f.Set("message", Truncate(msg, MaxMessageLen))
	if t := strings.TrimSpace(m.Title); t != "" {
		f.Set("title", Truncate(t, MaxTitleLen))
	}
	// A cut URL would be a broken link, so one over the limit is left out;
	// the body usually names the service anyway.
	if m.URL != "" && utf8.RuneCountInString(m.URL) <= MaxURLLen {
		f.Set("url", m.URL)
		f.Set("url_title", "Open in vigil")
	}
	p := c.Priority(m.Level)
	f.Set("priority", strconv.Itoa(p))
	if p == PriorityEmergency {
		f.Set("retry", strconv.Itoa(int(c.cfg.Retry/time.Second)))
		f.Set("expire", strconv.Itoa(int(c.cfg.Expire/time.Second)))
	}
	if c.cfg.Sound != "" {
		f.Set("sound", c.cfg.Sound)
	}
	if !m.At.IsZero() {
		f.Set("timestamp", strconv.FormatInt(m.At.Unix(), 10))
	}
	return f
}

// noteLimits keeps the quota headers of an answer.
func (c *Channel) noteLimits(h http.Header) {
	limit, err1 := strconv.Atoi(h.Get("X-Limit-App-Limit"))
	remaining, err2 := strconv.Atoi(h.Get("X-Limit-App-Remaining"))
	reset, err3 := strconv.ParseInt(h.Get("X-Limit-App-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	c.mu.Lock()
	c.limits = Limits{Limit: limit, Remaining: remaining, Reset: time.Unix(reset, 0).UTC()}
	c.mu.Unlock()
}

// Truncate returns s cut to at most n characters (runes), ending in "…" when
// it was cut. It never splits a UTF-8 sequence.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return s[:i] + "…"
}
