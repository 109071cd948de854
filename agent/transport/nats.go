package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/buffer"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// NATSConfig says how the agent reaches NATS, with the same credential and
// TLS options as vigil's own roles (natsconn.Auth).
type NATSConfig struct {
	// URL is a comma-separated list of nats:// or tls:// server URLs.
	URL string
	// Name identifies the connection in the server's monitoring.
	Name string
	// Auth holds the credentials and TLS files.
	natsconn.Auth
	// Timeout bounds each publish and request (default 10 s).
	Timeout time.Duration
}

// NATS is the NATS transport. Stats are published with JetStream to
// vigil.HostStatsSubject(host) (KV bucket vigil_hosts follows by its
// source); pulses and alerts are requests to vigil.SubjectInPulse and
// vigil.SubjectInAlert, answered by ingest with a Status header. Every
// message carries its Item.ID as Nats-Msg-Id.
type NATS struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	timeout time.Duration
	log     *slog.Logger
	// lastErr is the last asynchronous error (a permissions violation).
	lastErr atomic.Pointer[error]
}

// DialNATS connects to NATS. The first connection is retried in the
// background like every later reconnect, so the agent starts (and buffers)
// while the server is down; it fails only on bad options (an unreadable
// credentials or nkey file). Messages are never queued inside the client
// while disconnected: a send then fails at once and the caller buffers it.
func DialNATS(cfg NATSConfig, log *slog.Logger) (*NATS, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &NATS{timeout: cfg.Timeout, log: log}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats connected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("nats connected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			t.lastErr.Store(&err)
			log.Warn("nats error", "err", err)
		}),
	}
	auth, err := cfg.Options()
	if err != nil {
		return nil, fmt.Errorf("nats %w", err)
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", natsconn.RedactURL(cfg.URL), err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	t.nc, t.js = nc, js
	return t, nil
}

// Conn returns the connection (the toast client subscribes on it).
func (t *NATS) Conn() *nats.Conn { return t.nc }

// Close closes the connection.
func (t *NATS) Close() { t.nc.Close() }

// Send stores it: a JetStream publish for stats, a request to the intake
// for a pulse or an alert. It returns ErrRejected for a message the server
// refused (a 4xx Status, a JetStream 400), another error when it could
// not be delivered now (disconnected, no responders, timeout).
func (t *NATS) Send(ctx context.Context, it buffer.Item) error {
	if !t.nc.IsConnected() {
		return fmt.Errorf("nats: not connected (%s)", t.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	switch it.Kind {
	case KindStats:
		msg := &nats.Msg{Subject: vigil.HostStatsSubject(it.Key), Data: it.Body, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, it.ID)
		_, err := t.js.PublishMsg(ctx, msg)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code == 400 {
			return rejected("stats: %v", err)
		}
		if err != nil {
			return fmt.Errorf("publish stats: %w%s", err, t.hint())
		}
		return nil
	case KindPulse:
		return t.request(ctx, vigil.SubjectInPulse, it)
	case KindAlert:
		return t.request(ctx, vigil.SubjectInAlert, it)
	}
	return rejected("unknown kind %q", it.Kind)
}

// request sends it to an intake subject and reads ingest's Status header.
func (t *NATS) request(ctx context.Context, subject string, it buffer.Item) error {
	msg := &nats.Msg{Subject: subject, Data: it.Body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, it.ID)
	msg.Header.Set("Content-Type", "application/json")
	resp, err := t.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return fmt.Errorf("%s: %w%s", it.Kind, err, t.hint())
	}
	code, _ := strconv.Atoi(resp.Header.Get("Status"))
	return statusError(it.Kind, code, resp.Data)
}

// hint names the last asynchronous error, which explains a timeout caused
// by a permissions violation.
func (t *NATS) hint() string {
	if p := t.lastErr.Load(); p != nil {
		return " (last nats error: " + (*p).Error() + ")"
	}
	return ""
}

// Check connects, then probes without storing anything: a stats publish
// that JetStream refuses by its expected-last-sequence header (proving the
// publish permission and the stream), a pulse request with an empty body
// that ingest answers 400 (proving the intake is served), and a direct get
// of the host's key in vigil_hosts (whether the id is registered; info only,
// the agent's credentials may not allow it).
func (t *NATS) Check(ctx context.Context, host string) Report {
	var r Report
	wait, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	for !t.nc.IsConnected() && wait.Err() == nil {
		select {
		case <-wait.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !t.nc.IsConnected() {
		msg := fmt.Sprintf("not connected (%s)", t.nc.Status())
		if err := t.nc.LastError(); err != nil {
			msg += ": " + err.Error()
		}
		return append(r, Probe{Name: "connect", Detail: msg})
	}
	r = append(r, Probe{Name: "connect", OK: true, Detail: t.nc.ConnectedUrlRedacted()})

	cctx, cancel2 := context.WithTimeout(ctx, t.timeout)
	defer cancel2()
	msg := &nats.Msg{Subject: vigil.HostStatsSubject(host), Data: []byte(`{}`)}
	_, err := t.js.PublishMsg(cctx, msg, jetstream.WithExpectLastSequence(math.MaxUint64-1))
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		r = append(r, Probe{Name: "publish stats", OK: true, Detail: vigil.HostStatsSubject(host) + " → " + vigil.StreamHostStats})
	case err == nil:
		r = append(r, Probe{Name: "publish stats", Detail: "the probe was stored: the stream ignores expected-last-sequence"})
	default:
		r = append(r, Probe{Name: "publish stats", Detail: err.Error() + t.hint()})
	}

	resp, err := t.nc.RequestMsgWithContext(cctx, &nats.Msg{Subject: vigil.SubjectInPulse, Data: []byte(`{}`), Header: nats.Header{"Content-Type": []string{"application/json"}}})
	switch {
	case err != nil:
		r = append(r, Probe{Name: "pulse intake", Detail: err.Error() + t.hint()})
	case resp.Header.Get("Status") == "400":
		r = append(r, Probe{Name: "pulse intake", OK: true, Detail: vigil.SubjectInPulse + " answered by ingest"})
	default:
		r = append(r, Probe{Name: "pulse intake", Detail: fmt.Sprintf("unexpected answer status %q: %s", resp.Header.Get("Status"), resp.Data)})
	}

	r = append(r, t.registered(cctx, host))
	return r
}

// registered reads the host's latest stats from vigil_hosts.
func (t *NATS) registered(ctx context.Context, host string) Probe {
	p := Probe{Name: "system id", Info: true}
	subj := "$KV." + vigil.BucketHosts + "." + vigil.Token(host)
	resp, err := t.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_"+vigil.BucketHosts+"."+subj, nil)
	switch {
	case err != nil:
		p.Detail = "cannot tell whether " + host + " is registered: " + err.Error()
	case resp.Header.Get("Status") == "404":
		p.OK, p.Detail = true, host+" has not been registered yet (no stats stored)"
	case len(resp.Data) == 0:
		p.Detail = fmt.Sprintf("cannot tell whether %s is registered: status %s %s", host, resp.Header.Get("Status"), resp.Header.Get("Description"))
	default:
		p.OK = true
		p.Detail = host + " is registered"
		var s struct {
			At time.Time `json:"at"`
		}
		if json.Unmarshal(resp.Data, &s) == nil && !s.At.IsZero() {
			p.Detail += ", last stats at " + s.At.Format(time.RFC3339)
		}
	}
	return p
}

// statusError maps an intake answer's HTTP-equivalent status to an error.
func statusError(kind string, code int, body []byte) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == 401 || code == 403 || code == 408 || code == 429 || code == 0:
		return fmt.Errorf("%s: status %d: %s", kind, code, errorText(body))
	case code >= 400 && code < 500:
		return rejected("%s: status %d: %s", kind, code, errorText(body))
	}
	return fmt.Errorf("%s: status %d: %s", kind, code, errorText(body))
}

// errorText returns the "error" of a vigil error body, or the body cut
// short.
func errorText(body []byte) string {
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
