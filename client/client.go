// Package client is a Go client of vigil's HTTP API v1: send pulses,
// cancels and events, raise manual alerts, read services with their
// statuses, query events, alerts and status flips, and follow the live
// stream (Stream, TailEvents) with automatic resume.
//
//	c, err := client.New("http://127.0.0.1:8080")
//	rec, err := c.Pulse(ctx, vigil.Pulse{Service: "db.backup", NextIn: vigil.Seconds(time.Hour)})
//
// Errors the server answers are *Error values; errors.Is maps them onto the
// sentinels of package vigil (vigil.ErrInvalid, vigil.ErrNotFound, …).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// maxResponse bounds how much of a response body is read, in bytes: a page
// of 1000 services is well under 2 MiB.
const maxResponse = 16 << 20

// Client talks to one vigil server. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[/prefix], without a trailing slash
	hc    *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes the client send "Authorization: Bearer token" on every
// request; an empty token sends none.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient makes the client send its requests through hc instead of
// an http.Client with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client of the vigil server at baseURL, an absolute http or
// https URL, optionally with a path prefix ("https://vigil.example.com/mon").
// It fails on any other URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("vigil server url %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vigil server url %q: want http://host:port or https://host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("vigil server url %q: want no query, fragment or user info", baseURL)
	}
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), hc: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	return c, nil
}

// Error is an error answer of the server: its HTTP status and the
// {"error", "field"} body (Field names the invalid input, when there is
// one). Unwrap maps the status onto package vigil's sentinels.
type Error struct {
	Status  int
	Message string
	Field   string
}

// Error returns "vigil: <status text>: <message>".
func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" && !strings.HasPrefix(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("vigil: %d %s: %s", e.Status, http.StatusText(e.Status), msg)
}

// Unwrap returns vigil.ErrInvalid for 400, ErrNotFound for 404, ErrTooLarge
// for 413, ErrUnsupportedMedia for 415, ErrUnavailable for 502, 503 and
// 504, and nil otherwise.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest:
		return vigil.ErrInvalid
	case http.StatusNotFound:
		return vigil.ErrNotFound
	case http.StatusRequestEntityTooLarge:
		return vigil.ErrTooLarge
	case http.StatusUnsupportedMediaType:
		return vigil.ErrUnsupportedMedia
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return vigil.ErrUnavailable
	}
	return nil
}

// PulseOption configures one Pulse or PulseBatch call.
type PulseOption func(*pulseOptions)

type pulseOptions struct{ idempotencyKey string }

// WithIdempotencyKey sends header Idempotency-Key: a request retried with
// the same key within the server's dedup window (2 min by default) is
// stored once.
func WithIdempotencyKey(key string) PulseOption {
	return func(o *pulseOptions) { o.idempotencyKey = key }
}

// Pulse sends one pulse (POST /v1/pulses) and returns the record the server
// stored, with Seq set. It returns an *Error when the server refuses it.
func (c *Client) Pulse(ctx context.Context, p vigil.Pulse, opts ...PulseOption) (*vigil.Record, error) {
	var rec vigil.Record
	if err := c.do(ctx, http.MethodPost, "/v1/pulses", p, pulseHeader(opts), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// PulseBatch sends pulses as one JSON array (POST /v1/pulses) and returns
// how many the server stored, not counting duplicates of an earlier request
// with the same idempotency key. The server validates the whole batch first
// and stores none of it when one pulse is invalid (an *Error whose Field is
// "[i].field"). An empty batch sends nothing.
func (c *Client) PulseBatch(ctx context.Context, pulses []vigil.Pulse, opts ...PulseOption) (accepted int, err error) {
	if len(pulses) == 0 {
		return 0, nil
	}
	var out struct {
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/pulses", pulses, pulseHeader(opts), &out); err != nil {
		return 0, err
	}
	return out.Accepted, nil
}

func pulseHeader(opts []PulseOption) http.Header {
	var o pulseOptions
	for _, f := range opts {
		f(&o)
	}
	if o.idempotencyKey == "" {
		return nil
	}
	return http.Header{"Idempotency-Key": {o.idempotencyKey}}
}

// Cancel cancels service name (DELETE /v1/services/{name}): no alert for it
// until it pulses again. It returns the stored cancel record, or an *Error
// wrapping vigil.ErrNotFound for a service the server does not know.
func (c *Client) Cancel(ctx context.Context, name string) (*vigil.Record, error) {
	var rec vigil.Record
	if err := c.do(ctx, http.MethodDelete, servicePath(name), nil, nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// ListOptions selects a page of services. Limit is the page size (0 means
// the server's default, 100; at most 1000), Cursor is a page's NextCursor
// (empty for the first page), and Status keeps only services in one of the
// given statuses (empty for all).
type ListOptions struct {
	Limit  int
	Cursor string
	Status []vigil.Status
}

// ServicePage is one page of services sorted by name. NextCursor is empty
// on the last page.
type ServicePage struct {
	Items      []vigil.ServiceStatus `json:"items"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// Services returns one page of services (GET /v1/services).
func (c *Client) Services(ctx context.Context, opts ListOptions) (*ServicePage, error) {
	q := url.Values{}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	if len(opts.Status) > 0 {
		s := make([]string, len(opts.Status))
		for i, st := range opts.Status {
			s[i] = string(st)
		}
		q.Set("status", strings.Join(s, ","))
	}
	path := "/v1/services"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p ServicePage
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AllServices returns every service sorted by name, or only those in one
// of the given statuses, following the cursors of GET /v1/services page by
// page (1000 per request).
func (c *Client) AllServices(ctx context.Context, status ...vigil.Status) ([]vigil.ServiceStatus, error) {
	opts := ListOptions{Limit: 1000, Status: status}
	var all []vigil.ServiceStatus
	for {
		p, err := c.Services(ctx, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all, nil
		}
		if p.NextCursor == opts.Cursor {
			return nil, fmt.Errorf("vigil: server repeated cursor %q", p.NextCursor)
		}
		opts.Cursor = p.NextCursor
	}
}

// Service returns one service with its status (GET /v1/services/{name}),
// or an *Error wrapping vigil.ErrNotFound.
func (c *Client) Service(ctx context.Context, name string) (*vigil.ServiceStatus, error) {
	var s vigil.ServiceStatus
	if err := c.do(ctx, http.MethodGet, servicePath(name), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Alert raises a manual alert (POST /v1/alerts) and returns it as stored,
// with ID and Seq set.
func (c *Client) Alert(ctx context.Context, a vigil.ManualAlert) (*vigil.Alert, error) {
	var out vigil.Alert
	if err := c.do(ctx, http.MethodPost, "/v1/alerts", a, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// servicePath returns /v1/services/{name} with name path-escaped, so names
// with "/", "%", "?" or spaces stay one path segment.
func servicePath(name string) string { return "/v1/services/" + url.PathEscape(name) }

// do sends one request with in (when non-nil) as its JSON body and decodes
// a 2xx JSON answer into out; any other answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, in any, h http.Header, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("vigil: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("vigil: %s %s: %w", method, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("vigil: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("vigil: read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("vigil: decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// errorFrom builds the *Error of a non-2xx answer; a body that is not
// vigil's JSON error (a proxy's HTML page) becomes the message, shortened.
func errorFrom(status int, body []byte) *Error {
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if err := json.Unmarshal(body, &e); err == nil && e.Error != "" {
		return &Error{Status: status, Message: e.Error, Field: e.Field}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = strings.ToLower(http.StatusText(status))
	}
	return &Error{Status: status, Message: msg}
}
