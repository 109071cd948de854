package toast

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// errAuth ends RunHTTP: retrying with the same token cannot help.
var errAuth = errors.New("toast: the API refused the token")

// maxEvent bounds one SSE line, in bytes.
const maxEvent = 1 << 20

// RunHTTP shows this desktop's toasts from the API's event stream until
// ctx ends, then returns nil: it reads GET {base}/v1/stream?types=alerts
// (Server-Sent Events; the token needs the read scope) and shows each
// alert whose owner is "toast" with this desktop's name. It resumes with
// the saved Last-Event-ID after a drop or a restart, waiting the server's
// retry time (1 s, doubling up to 30 s while the API is unreachable). It
// returns an error only when the API refuses the token (401, 403).
//
// The stream carries alerts, not the notifier's toasts: alerts that reach
// this desktop through a configured route rather than their owner are
// shown over NATS only.
func (c *Client) RunHTTP(ctx context.Context, base, token string, hc *http.Client) error {
	base = strings.TrimSuffix(base, "/")
	wait := time.Second
	for {
		start := time.Now()
		retry, err := c.streamOnce(ctx, base, token, hc)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errAuth) {
			return err
		}
		if time.Since(start) > time.Minute {
			wait = time.Second // the stream worked for a while: reconnect soon
		}
		if retry > 0 {
			wait = retry
		}
		c.log.Warn("event stream ended, reconnecting", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// streamOnce reads one connection of the stream; it returns the server's
// retry time, if it sent one, and why the stream ended.
func (c *Client) streamOnce(ctx context.Context, base, token string, hc *http.Client) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?types=alerts", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.state.Event != "" {
		req.Header.Set("Last-Event-ID", c.state.Event)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%w (%d): %s", errAuth, resp.StatusCode, strings.TrimSpace(string(b)))
	case resp.StatusCode == http.StatusBadRequest && c.state.Event != "":
		// An id from another server: start over at the end of the stream.
		c.log.Warn("the API refused the saved event id, starting from now", "id", c.state.Event)
		c.state.Event = ""
		c.save()
		return time.Second, fmt.Errorf("event stream: %s", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("event stream: %s", resp.Status)
	}
	c.log.Info("toast client following the event stream", "name", c.cfg.Name, "url", base+"/v1/stream")
	return c.readEvents(ctx, resp.Body)
}

// readEvents parses Server-Sent Events (WHATWG HTML §9.2) from r and
// handles each "alerts" event; every id is saved as the resume point.
func (c *Client) readEvents(ctx context.Context, r io.Reader) (time.Duration, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEvent)
	var retry time.Duration
	var event, id string
	var data strings.Builder
	hasID := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // dispatch
			if hasID {
				c.state.Event = id
			}
			if event == "alerts" && data.Len() > 0 {
				c.alert(ctx, data.String())
			}
			if hasID || event != "" {
				c.save()
			}
			event, hasID = "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: the heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				id, hasID = value, true
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := sc.Err(); err != nil {
		return retry, fmt.Errorf("event stream: %w", err)
	}
	return retry, io.ErrUnexpectedEOF
}

// alert shows an alert of the stream when its owner is this desktop.
func (c *Client) alert(ctx context.Context, data string) {
	var a vigil.Alert
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		c.log.Warn("skipping undecodable alert", "err", err)
		return
	}
	if a.Owner == nil || a.Owner.Type != vigil.ChannelToast || a.Owner.Target != c.cfg.Name {
		return
	}
	c.handle(ctx, vigil.Toast{ID: a.ID, Title: a.Title, Body: a.Message, Level: a.Level, At: a.At, Service: a.Service, Services: a.Services})
}
