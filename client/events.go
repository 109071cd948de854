package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// Event sends one event (POST /v1/events) and returns it as stored, with
// ID, Received and Seq set. With WithIdempotencyKey a retried call within
// the server's dedup window stores it once.
func (c *Client) Event(ctx context.Context, e vigil.Event, opts ...PulseOption) (*vigil.Event, error) {
	var out vigil.Event
	if err := c.do(ctx, http.MethodPost, "/v1/events", wireEvent(e), pulseHeader(opts), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EventBatch sends events as one JSON array (POST /v1/events) and returns
// how many the server stored, duplicates of an earlier request with the
// same idempotency key included. The server stores none of them when one is
// invalid (an *Error whose Field is "[i].field"). An empty batch sends
// nothing.
func (c *Client) EventBatch(ctx context.Context, events []vigil.Event, opts ...PulseOption) (accepted int, err error) {
	if len(events) == 0 {
		return 0, nil
	}
	in := make([]eventIn, len(events))
	for i, e := range events {
		in[i] = wireEvent(e)
	}
	var out struct {
		Accepted int `json:"accepted"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/events", in, pulseHeader(opts), &out); err != nil {
		return 0, err
	}
	return out.Accepted, nil
}

// eventIn is the part of a vigil.Event a client sends.
type eventIn struct {
	Service string            `json:"service"`
	Level   vigil.Level       `json:"level"`
	Message string            `json:"message"`
	At      time.Time         `json:"at,omitzero"`
	Alert   bool              `json:"alert,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

func wireEvent(e vigil.Event) eventIn {
	return eventIn{Service: e.Service, Level: e.Level, Message: e.Message, At: e.At, Alert: e.Alert, Attrs: e.Attrs}
}

// Paging selects the window and page of a list: From and To bound the
// time inclusively (zero for the server's default: the last 24 h for
// events, everything for alerts), Limit is the page size (0 for the
// server's default, 100; at most 1000), Cursor a page's NextCursor, and
// Ascending lists oldest first instead of newest first.
type Paging struct {
	From, To  time.Time
	Limit     int
	Cursor    string
	Ascending bool
}

func (p Paging) values(q url.Values) {
	if !p.From.IsZero() {
		q.Set("from", p.From.Format(time.RFC3339Nano))
	}
	if !p.To.IsZero() {
		q.Set("to", p.To.Format(time.RFC3339Nano))
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	if p.Ascending {
		q.Set("order", "asc")
	}
}

// Filter selects events or alerts: Service and Message are case-insensitive
// RE2 regular expressions on the service name and the message,
// ServiceExact names services exactly (any of them), and Level is the
// lowest level listed. Empty fields select everything.
type Filter struct {
	Service      string
	ServiceExact []string
	Message      string
	Level        vigil.Level
}

func (f Filter) values(q url.Values) {
	if f.Service != "" {
		q.Set("service", f.Service)
	}
	for _, n := range f.ServiceExact {
		q.Add("service_exact", n)
	}
	if f.Message != "" {
		q.Set("message", f.Message)
	}
	if f.Level > 0 {
		q.Set("level", strconv.Itoa(int(f.Level)))
	}
}

// EventQuery selects a page of events.
type EventQuery struct {
	Filter
	Paging
}

// EventPage is one page of events; NextCursor is empty on the last page.
// A page may hold fewer items than asked for (even none) and still have a
// NextCursor when the server's scan budget ran out: go on with it.
type EventPage struct {
	Items      []vigil.Event `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// Events returns one page of events (GET /v1/events), newest first unless
// q.Ascending.
func (c *Client) Events(ctx context.Context, q EventQuery) (*EventPage, error) {
	v := url.Values{}
	q.Filter.values(v)
	q.Paging.values(v)
	var p EventPage
	if err := c.do(ctx, http.MethodGet, withQuery("/v1/events", v), nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AlertQuery selects a page of alerts; Kinds keeps only alerts of those
// kinds (empty for all).
type AlertQuery struct {
	Filter
	Kinds []vigil.AlertKind
	Paging
}

// AlertPage is one page of alerts, shaped like EventPage.
type AlertPage struct {
	Items      []vigil.Alert `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// Alerts returns one page of alerts (GET /v1/alerts), newest first unless
// q.Ascending.
func (c *Client) Alerts(ctx context.Context, q AlertQuery) (*AlertPage, error) {
	v := url.Values{}
	q.Filter.values(v)
	if len(q.Kinds) > 0 {
		k := make([]string, len(q.Kinds))
		for i, kind := range q.Kinds {
			k[i] = string(kind)
		}
		v.Set("kind", strings.Join(k, ","))
	}
	q.Paging.values(v)
	var p AlertPage
	if err := c.do(ctx, http.MethodGet, withQuery("/v1/alerts", v), nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ServiceHistory returns one page of a service's status flips: its down
// and recovered alerts (GET /v1/services/{name}/history).
func (c *Client) ServiceHistory(ctx context.Context, name string, p Paging) (*AlertPage, error) {
	v := url.Values{}
	p.values(v)
	var out AlertPage
	if err := c.do(ctx, http.MethodGet, withQuery(servicePath(name)+"/history", v), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// The types of StreamMessage.
const (
	StreamEvents     = "events"
	StreamAlerts     = "alerts"
	StreamStatus     = "status"
	StreamDeliveries = "deliveries"
)

// StreamQuery selects what GET /v1/stream carries: Types among
// StreamEvents, StreamAlerts, StreamStatus and StreamDeliveries (empty for
// all), the Filter (Level and Message apply to events and alerts), and
// LastEventID, a StreamMessage.ID to resume after (empty to start now).
type StreamQuery struct {
	Types []string
	Filter
	LastEventID string
}

// StreamMessage is one Server-Sent Event of GET /v1/stream. Type is one of
// the Stream* constants; ID is the resume token to pass as LastEventID;
// Data is the JSON of a vigil.Event, vigil.Alert, vigil.Verdict or
// delivery attempt.
type StreamMessage struct {
	Type string
	ID   string
	Data json.RawMessage
}

// Event decodes the message's data as an event.
func (m StreamMessage) Event() (vigil.Event, error) {
	var e vigil.Event
	err := json.Unmarshal(m.Data, &e)
	return e, err
}

// Stream follows GET /v1/stream and calls fn for each message, in order
// per type, until ctx ends (then it returns nil) or fn returns an error
// (which it returns). When the connection drops or the server drops a slow
// client, it reconnects with the last message's ID as Last-Event-ID after
// the server's retry delay, growing to 30 s while reconnects keep failing,
// so nothing is missed or repeated within the server's retention. A 4xx
// answer (a bad filter) is returned as an *Error.
func (c *Client) Stream(ctx context.Context, q StreamQuery, fn func(StreamMessage) error) error {
	v := url.Values{}
	if len(q.Types) > 0 {
		v.Set("types", strings.Join(q.Types, ","))
	}
	q.values(v)
	path := withQuery("/v1/stream", v)
	hc := *c.hc
	hc.Timeout = 0 // a stream has no end; ctx and the server's heartbeats bound it
	last := q.LastEventID
	retry, wait := time.Second, time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		got, err := c.streamOnce(ctx, &hc, path, &last, &retry, fn)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, new(handlerError)):
			return err.(handlerError).err //nolint:errorlint // streamOnce returns it unwrapped
		case err != nil:
			var e *Error
			if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests {
				return err
			}
		}
		if got {
			wait = retry
		} else {
			wait = min(max(2*wait, retry), 30*time.Second)
		}
	}
}

// handlerError carries an error of Stream's fn out of streamOnce.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// streamOnce runs one connection of Stream; got says whether it received
// anything, so a working connection that ends resets the backoff.
func (c *Client) streamOnce(ctx context.Context, hc *http.Client, path string, last *string, retry *time.Duration, fn func(StreamMessage) error) (got bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return false, fmt.Errorf("vigil: GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("vigil: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		return false, errorFrom(resp.StatusCode, b)
	}
	// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxResponse)
	var m StreamMessage
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if m.ID != "" {
				*last = m.ID // even without data: the server's starting position
			}
			if len(data) > 0 {
				m.Data = json.RawMessage(strings.Join(data, "\n"))
				if m.Type == "" {
					m.Type = "message"
				}
				if err := fn(m); err != nil {
					return true, handlerError{err}
				}
			}
			got, m, data = true, StreamMessage{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			m.Type = value
		case "data":
			data = append(data, value)
		case "id":
			m.ID = value
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
				*retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := sc.Err(); err != nil {
		return got, fmt.Errorf("vigil: read stream: %w", err)
	}
	return got, nil
}

// TailEvents follows the events that f selects as they arrive
// (GET /v1/stream?types=events) and calls fn for each, reconnecting and
// resuming as Stream does, until ctx ends or fn fails.
func (c *Client) TailEvents(ctx context.Context, f Filter, fn func(vigil.Event) error) error {
	return c.Stream(ctx, StreamQuery{Types: []string{StreamEvents}, Filter: f}, func(m StreamMessage) error {
		if m.Type != StreamEvents {
			return nil
		}
		e, err := m.Event()
		if err != nil {
			return fmt.Errorf("vigil: decode event: %w", err)
		}
		return fn(e)
	})
}
