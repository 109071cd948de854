package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/httpx"
)

// Limits of the list endpoints.
const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxScan bounds the history records one list request reads; a page
	// may hold fewer than limit items and still have a next_cursor.
	maxScan     = 20000
	readTimeout = 10 * time.Second
)

// streams are the handles the HTTP endpoints use.
type streams struct {
	js       jetstream.JetStream
	dead     jetstream.Stream
	attempts jetstream.Stream
	silences jetstream.KeyValue
}

// HTTP serves the notifier's endpoints: delivery history, dead letters and
// silences. It is built from the bus assets alone, so any role may mount
// it (the notifier does, see Role.Routes).
type HTTP struct {
	s   streams
	log *slog.Logger
	now func() time.Time
}

// NewHTTP returns the endpoints on deps' assets. It fails when an asset is
// missing.
func NewHTTP(deps Deps) (*HTTP, error) {
	a := deps.Assets
	if a == nil || a.JS == nil || a.DeadLetters == nil || a.Attempts == nil || a.Silences == nil || deps.Log == nil {
		return nil, errors.New("notifier http: Assets (JS, DeadLetters, Attempts, Silences) and Log are required")
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return &HTTP{s: streams{js: a.JS, dead: a.DeadLetters, attempts: a.Attempts, silences: a.Silences}, log: deps.Log, now: now}, nil
}

// Routes mounts:
//
//	GET    /v1/deliveries?alert=&service=&status=&channel=&limit=&cursor=
//	GET    /v1/deadletters?channel=&limit=&cursor=
//	POST   /v1/deadletters/{seq}/retry
//	POST   /v1/silences
//	GET    /v1/silences?state=
//	GET    /v1/silences/{id}
//	DELETE /v1/silences/{id}
func (h *HTTP) Routes(rt chi.Router) {
	rt.Get("/v1/deliveries", h.listDeliveries)
	rt.Get("/v1/deadletters", h.listDeadLetters)
	rt.Post("/v1/deadletters/{seq}/retry", h.retryDeadLetter)
	rt.Post("/v1/silences", h.createSilence)
	rt.Get("/v1/silences", h.listSilences)
	rt.Get("/v1/silences/{id}", h.getSilence)
	rt.Delete("/v1/silences/{id}", h.expireSilence)
}

type deliveryQuery struct {
	alert, service, channel string
	status                  Outcome
	limit                   int
	before                  uint64
}

func parseList(q map[string][]string) (limit int, before uint64, err error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	limit = defaultLimit
	if s := get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, vigil.Invalid("limit", "must be an integer from 1 to %d", maxLimit)
		}
	}
	if s := get("cursor"); s != "" {
		before, err = strconv.ParseUint(s, 10, 64)
		if err != nil || before == 0 {
			return 0, 0, vigil.Invalid("cursor", "is not a cursor this endpoint returned")
		}
	}
	return limit, before, nil
}

func parseChannel(s string) error {
	if s != "" && !channelName.MatchString(s) {
		return vigil.Invalid("channel", "must be a channel type such as mail, pushover, webhook or toast")
	}
	return nil
}

// listDeliveries serves GET /v1/deliveries: the delivery history, newest
// first, as {"items": [Attempt…], "next_cursor"}. Filters: alert (alert
// id), service (name), status (an Outcome), channel (type).
func (h *HTTP) listDeliveries(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	dq := deliveryQuery{alert: q.Get("alert"), service: q.Get("service"), channel: q.Get("channel"), status: Outcome(q.Get("status"))}
	var err error
	if dq.limit, dq.before, err = parseList(q); err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	if dq.status != "" && !slices.Contains(outcomes, dq.status) {
		httpx.WriteError(w, req, h.log, vigil.Invalid("status", "must be one of delivered, retrying, dead, silenced, skipped-duplicate, resolved"))
		return
	}
	if err := parseChannel(dq.channel); err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	if dq.service != "" {
		if err := vigil.ValidateName(dq.service); err != nil {
			httpx.WriteError(w, req, h.log, err)
			return
		}
	}
	ch := "*"
	if dq.channel != "" {
		ch = dq.channel
	}
	var filters []string
	switch {
	case dq.service != "":
		// A grouped job is recorded under "_" with its services listed.
		filters = []string{"vigil.attempt." + ch + "." + vigil.Token(dq.service), "vigil.attempt." + ch + "." + vigil.NoService}
	case dq.channel != "":
		filters = []string{"vigil.attempt." + ch + ".>"}
	}
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	items := []Attempt{}
	next, err := scanBack(ctx, h.s.js, vigil.StreamAttempts, filters, dq.before, dq.limit, maxScan, func(m *jetstream.RawStreamMsg) bool {
		a, err := decodeAttempt(m)
		if err != nil || !a.matches(&dq) {
			return false
		}
		items = append(items, a)
		return true
	})
	if err != nil {
		httpx.WriteError(w, req, h.log, fmt.Errorf("%w: %w", vigil.ErrUnavailable, err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, httpx.Page[Attempt]{Items: items, NextCursor: cursor(next)})
}

func cursor(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatUint(seq, 10)
}

// listDeadLetters serves GET /v1/deadletters: the dead letters, newest
// first, with targets redacted, as {"items": [DeadLetter…],
// "next_cursor"}. Filter: channel.
func (h *HTTP) listDeadLetters(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	limit, before, err := parseList(q)
	if err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	c := q.Get("channel")
	if err := parseChannel(c); err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	var filters []string
	if c != "" {
		filters = []string{vigil.DeadLetterSubject(c)}
	}
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	items := []DeadLetter{}
	next, err := scanBack(ctx, h.s.js, vigil.StreamDeadLetters, filters, before, limit, maxScan, func(m *jetstream.RawStreamMsg) bool {
		d, err := decodeDeadLetter(m)
		if err != nil {
			return false
		}
		d.Job.Target = Redact(d.Job.Channel, d.Job.Target)
		if o := d.Job.Alert.Owner; o != nil {
			d.Job.Alert.Owner = &vigil.Owner{Type: o.Type, Target: Redact(o.Type, o.Target)}
		}
		items = append(items, d)
		return true
	})
	if err != nil {
		httpx.WriteError(w, req, h.log, fmt.Errorf("%w: %w", vigil.ErrUnavailable, err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, httpx.Page[DeadLetter]{Items: items, NextCursor: cursor(next)})
}

// retryDeadLetter serves POST /v1/deadletters/{seq}/retry: 202 with
// {"job": id, "channel", "retry"} once the job is queued again; 404 when
// the dead letter is gone (already retried or aged out).
func (h *HTTP) retryDeadLetter(w http.ResponseWriter, req *http.Request) {
	seq, err := strconv.ParseUint(chi.URLParam(req, "seq"), 10, 64)
	if err != nil || seq == 0 {
		httpx.WriteError(w, req, h.log, vigil.Invalid("seq", "must be a dead letter's sequence number"))
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	j, err := retryDeadLetter(ctx, h.s, seq)
	if err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"job": j.ID, "channel": j.Channel, "retry": j.Retry})
}

// createSilence serves POST /v1/silences: a JSON Silence without id
// (matchers, starts_at (default now), ends_at, created_by, comment);
// answers 201 with the stored silence once it is in KV vigil_silences.
func (h *HTTP) createSilence(w http.ResponseWriter, req *http.Request) {
	if ct := req.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			httpx.WriteError(w, req, h.log, fmt.Errorf("content type %q: want application/json: %w", ct, vigil.ErrUnsupportedMedia))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxSilenceBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.WriteError(w, req, h.log, fmt.Errorf("silence body over %d bytes: %w", maxSilenceBody, vigil.ErrTooLarge))
			return
		}
		httpx.WriteError(w, req, h.log, vigil.Invalid("", "reading body: %v", err))
		return
	}
	var s Silence
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		httpx.WriteError(w, req, h.log, vigil.Invalid("", "body is not a silence: %v", err))
		return
	}
	now := h.now().UTC()
	if s.ID != "" {
		httpx.WriteError(w, req, h.log, vigil.Invalid("id", "is assigned by the server"))
		return
	}
	s.Status = nil
	if err := s.validate(now); err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	s.ID = nuid.Next()
	s.UpdatedAt = now
	data, err := json.Marshal(&s)
	if err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	if _, err := h.s.silences.Create(ctx, s.ID, data); err != nil {
		httpx.WriteError(w, req, h.log, fmt.Errorf("store silence: %w: %w", vigil.ErrUnavailable, err))
		return
	}
	s.Status = &SilenceStatus{State: s.state(now)}
	httpx.WriteJSON(w, http.StatusCreated, &s)
}

// listSilences serves GET /v1/silences?state=active|pending|expired: every
// silence (or those in state), latest end first, as {"items": […]}.
func (h *HTTP) listSilences(w http.ResponseWriter, req *http.Request) {
	state := req.URL.Query().Get("state")
	if state != "" && state != "active" && state != "pending" && state != "expired" {
		httpx.WriteError(w, req, h.log, vigil.Invalid("state", "must be active, pending or expired"))
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	now := h.now()
	items := []*Silence{}
	keys, err := h.s.silences.ListKeys(ctx)
	if err != nil {
		httpx.WriteError(w, req, h.log, fmt.Errorf("list silences: %w: %w", vigil.ErrUnavailable, err))
		return
	}
	for k := range keys.Keys() {
		s, _, err := getSilence(ctx, h.s.silences, k)
		if errors.Is(err, vigil.ErrNotFound) {
			continue
		}
		if err != nil {
			_ = keys.Stop()
			httpx.WriteError(w, req, h.log, err)
			return
		}
		s.Status = &SilenceStatus{State: s.state(now)}
		if state == "" || s.Status.State == state {
			items = append(items, s)
		}
	}
	slices.SortFunc(items, func(a, b *Silence) int { return b.EndsAt.Compare(a.EndsAt) })
	httpx.WriteJSON(w, http.StatusOK, httpx.Page[*Silence]{Items: items})
}

// getSilence serves GET /v1/silences/{id}.
func (h *HTTP) getSilence(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	s, _, err := getSilence(ctx, h.s.silences, chi.URLParam(req, "id"))
	if err != nil {
		httpx.WriteError(w, req, h.log, err)
		return
	}
	s.Status = &SilenceStatus{State: s.state(h.now())}
	httpx.WriteJSON(w, http.StatusOK, s)
}

// expireSilence serves DELETE /v1/silences/{id}: the silence ends now (a
// pending one never starts) and is kept as expired; answers 200 with it.
// Expiring an expired silence changes nothing.
func (h *HTTP) expireSilence(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), readTimeout)
	defer cancel()
	id := chi.URLParam(req, "id")
	for range 5 {
		s, rev, err := getSilence(ctx, h.s.silences, id)
		if err != nil {
			httpx.WriteError(w, req, h.log, err)
			return
		}
		now := h.now().UTC()
		if s.state(now) == "expired" {
			s.Status = &SilenceStatus{State: "expired"}
			httpx.WriteJSON(w, http.StatusOK, s)
			return
		}
		if now.Before(s.StartsAt) {
			s.StartsAt = now
		}
		s.EndsAt, s.UpdatedAt = now, now
		data, err := json.Marshal(s)
		if err != nil {
			httpx.WriteError(w, req, h.log, err)
			return
		}
		_, err = h.s.silences.Update(ctx, id, data, rev)
		if err == nil {
			s.Status = &SilenceStatus{State: "expired"}
			httpx.WriteJSON(w, http.StatusOK, s)
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				httpx.WriteError(w, req, h.log, fmt.Errorf("expire silence: %w: %w", vigil.ErrUnavailable, err))
				return
			}
		}
		// Changed concurrently: read it again.
	}
	httpx.WriteError(w, req, h.log, fmt.Errorf("expire silence %s: too many concurrent changes: %w", id, vigil.ErrUnavailable))
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrKeyNotFound)
}
