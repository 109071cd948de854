package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
)

// eventMetrics are the counters of the event intake.
type eventMetrics struct {
	accepted   prometheus.Counter
	rejectedBy map[string]prometheus.Counter
}

func (r *Role) registerEventMetrics(reg prometheus.Registerer) error {
	m := &r.events
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_events_accepted_total",
		Help: "Events acknowledged by JetStream (HTTP and NATS intake, duplicates included).",
	})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_events_rejected_total",
		Help: "Event requests rejected, by reason (invalid, too_large, media_type, unavailable).",
	}, []string{"reason"})
	m.rejectedBy = make(map[string]prometheus.Counter, 4)
	for _, reason := range []string{reasonInvalid, reasonTooLarge, reasonMediaType, reasonUnavailable} {
		m.rejectedBy[reason] = rejected.WithLabelValues(reason)
	}
	for _, c := range []prometheus.Collector{m.accepted, rejected} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	return nil
}

func (r *Role) handleEvents(w http.ResponseWriter, hr *http.Request) {
	req, buf := r.readRequest(w, hr)
	body, err := r.acceptEvents(hr.Context(), req)
	r.putBuf(buf)
	code, body := r.answer(body, err, http.StatusAccepted, false)
	writeJSON(w, code, body)
}

// acceptEvents is POST /v1/events and vigil.in.event: decode and validate
// every event (one JSON object, a JSON array or NDJSON), then publish each
// to its vigil.EventSubject in stream VIGIL_EVENTS with the server's
// receive time, and for each event with "alert": true a manual alert to
// VIGIL_ALERTS. Nothing is published when any event is invalid. It answers
// only after every PubAck: the stored event with "seq" for a single event,
// {"accepted": N, "duplicates": D} for a batch. With an idempotency key,
// item i of the request gets a message id derived from (key, service, i),
// so a retry within the stream's dedup window stores nothing twice.
func (r *Role) acceptEvents(ctx context.Context, req request) (out []byte, err error) {
	defer func() {
		if reason := rejectReason(err); reason != "" {
			r.events.rejectedBy[reason].Inc()
		}
	}()
	f, err := mediaForm(req.contentType, true, req.form)
	if err != nil {
		return nil, err
	}
	if err := r.checkBody(req); err != nil {
		return nil, err
	}
	events, single, err := decodeBatch(req.body, f, r.cfg.MaxBatch, "event", (*scanner).event)
	if err != nil {
		return nil, err
	}
	for i := range events {
		if err := events[i].Validate(); err != nil {
			if single {
				return nil, err
			}
			return nil, vigil.PrefixField(index(i), err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	now := r.now().UTC()
	msgs := make([]*nats.Msg, len(events), len(events)+1)
	var owners map[string]*vigil.Owner
	var alerts []*nats.Msg
	for i := range events {
		e := &events[i]
		e.Received, e.ID = now, r.msgID(req.key, "event", e.Service, i)
		data := appendEvent(make([]byte, 0, 128+len(e.Service)+len(e.Message)), e)
		msgs[i] = r.newMsg(vigil.EventSubject(e.Service), data, req.key, e.ID)
		if !e.Alert {
			continue
		}
		if owners == nil {
			owners = map[string]*vigil.Owner{}
		}
		m, err := r.eventAlert(ctx, e, owners)
		if err != nil {
			return nil, err
		}
		alerts = append(alerts, m)
	}
	if single {
		ack, err := r.assets.JS.PublishMsg(ctx, msgs[0])
		if err != nil {
			return nil, fmt.Errorf("store event: %w: %w", vigil.ErrUnavailable, err)
		}
		r.events.accepted.Inc()
		if len(alerts) > 0 {
			if err := r.storeAlerts(ctx, alerts); err != nil {
				return nil, err
			}
		}
		data := msgs[0].Data
		if ack.Duplicate {
			if m, err := r.assets.Events.GetMsg(ctx, ack.Sequence); err == nil {
				data = m.Data
			}
		}
		return withSeq(data, ack.Sequence, ack.Duplicate), nil
	}
	ok, dups, err := r.publishBatch(ctx, "events", msgs)
	r.events.accepted.Add(float64(ok))
	if err != nil {
		return nil, err
	}
	if err := r.storeAlerts(ctx, alerts); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 48)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(ok), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(dups), 10)
	return append(b, '}'), nil
}

// storeAlerts publishes the alerts raised by events and counts those that
// were not duplicates.
func (r *Role) storeAlerts(ctx context.Context, alerts []*nats.Msg) error {
	if len(alerts) == 0 {
		return nil
	}
	// The events are stored; a failure here is a 503, and a retry with the
	// same Idempotency-Key stores only what is missing.
	ok, dups, err := r.publishBatch(ctx, "alerts of events", alerts)
	r.metrics.manualAlerts.Add(float64(ok - dups))
	return err
}

// eventAlert returns the manual alert an event with "alert": true raises:
// title the service, message and level the event's, and the owner of the
// service's last pulse record when it has one (else none, so the
// notifier's default route applies). Its id, "event:<event id>", is also
// its JetStream message id, so a retried event raises it once. owners
// caches the owner lookups of one request.
func (r *Role) eventAlert(ctx context.Context, e *vigil.Event, owners map[string]*vigil.Owner) (*nats.Msg, error) {
	owner, ok := owners[e.Service]
	if !ok {
		var err error
		owner, err = r.owner(ctx, e.Service)
		if err != nil {
			return nil, err
		}
		owners[e.Service] = owner
	}
	a := vigil.Alert{
		ID:      "event:" + e.ID,
		Kind:    vigil.AlertManual,
		Service: e.Service,
		Title:   e.Service,
		Message: e.Message,
		Level:   e.Level,
		Owner:   owner,
		Origin:  "event",
		At:      e.Received,
	}
	data, err := json.Marshal(&a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return &nats.Msg{
		Subject: vigil.AlertSubject(vigil.AlertManual, e.Service),
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{a.ID}},
	}, nil
}

// owner returns the owner of service's record in vigil_pulses, nil when
// the service never pulsed or has no owner.
func (r *Role) owner(ctx context.Context, service string) (*vigil.Owner, error) {
	e, err := r.assets.Pulses.Get(ctx, vigil.Token(service))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read owner of %q: %w: %w", service, vigil.ErrUnavailable, err)
	}
	var rec vigil.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		r.log.Warn("undecodable record, alerting the default route", "service", service, "err", err)
		return nil, nil
	}
	return rec.Owner, nil
}

// rejectReason is the vigil_events_rejected_total reason of err, "" for
// nil or an error that is not counted (not found).
func rejectReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, vigil.ErrInvalid):
		return reasonInvalid
	case errors.Is(err, vigil.ErrTooLarge):
		return reasonTooLarge
	case errors.Is(err, vigil.ErrUnsupportedMedia):
		return reasonMediaType
	case errors.Is(err, vigil.ErrNotFound):
		return ""
	}
	return reasonUnavailable
}

// event reads one event object: service, level (an integer or a level
// name), message, at (RFC 3339 or a number of Unix seconds), alert and
// attrs (an object of strings). Unknown fields are errors naming the field.
func (s *scanner) event() (vigil.Event, error) {
	var e vigil.Event
	if c := s.peek(); c != '{' {
		if k := s.kind(); k != "no value" {
			return e, vigil.Invalid("", "must be a JSON object, got %s", k)
		}
		return e, s.unexpected()
	}
	err := s.object(func(key []byte) error {
		switch {
		case fold(key, "service"):
			return s.stringField("service", &e.Service)
		case fold(key, "message"):
			return s.stringField("message", &e.Message)
		case fold(key, "level"):
			return s.level(&e.Level)
		case fold(key, "at"):
			return s.clientTime("at", &e.At)
		case fold(key, "alert"):
			return s.boolField("alert", &e.Alert)
		case fold(key, "attrs"):
			return s.attrs(&e.Attrs)
		}
		return vigil.Invalid(string(key), "unknown field")
	})
	return e, err
}

// level reads a level: a JSON integer, or a string holding a level name or
// an integer (vigil.ParseLevel); null leaves it unchanged.
func (s *scanner) level(dst *vigil.Level) error {
	switch c := s.peek(); {
	case c == 'n' && s.null():
		return nil
	case c == '"':
		b, err := s.str(nil)
		if err != nil {
			return err
		}
		l, err := vigil.ParseLevel(string(b))
		if err != nil {
			return err
		}
		*dst = l
		return nil
	case c == '-' || '0' <= c && c <= '9':
		lit, err := s.number()
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil || n < 0 || n > int64(vigil.MaxEventLevel) {
			return vigil.Invalid("level", "must be an integer between 0 and %d or a level name, got %s", vigil.MaxEventLevel, lit)
		}
		*dst = vigil.Level(n)
		return nil
	}
	if k := s.kind(); k != "no value" {
		return vigil.Invalid("level", "must be an integer or a level name, got %s", k)
	}
	return s.unexpected()
}

// clientTime reads a time given as an RFC 3339 string (time zone kept) or
// a JSON number of seconds since the Unix epoch (UTC); null is no time.
func (s *scanner) clientTime(name string, dst *time.Time) error {
	switch c := s.peek(); {
	case c == 'n' && s.null():
		*dst = time.Time{}
		return nil
	case c == '"':
		b, err := s.str(nil)
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil {
			return vigil.Invalid(name, "must be an RFC 3339 time like 2026-11-21T12:00:00Z or a number of Unix seconds")
		}
		*dst = t
		return nil
	case c == '-' || '0' <= c && c <= '9':
		lit, err := s.number()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil || math.IsInf(f, 0) || f < -62135596800 || f > 253402300799 {
			return vigil.Invalid(name, "%s Unix seconds is out of range", lit)
		}
		sec, frac := math.Modf(f)
		*dst = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
		return nil
	}
	if k := s.kind(); k != "no value" {
		return vigil.Invalid(name, "must be an RFC 3339 string or a number of Unix seconds, got %s", k)
	}
	return s.unexpected()
}

// boolField reads true, false or null (unchanged).
func (s *scanner) boolField(name string, dst *bool) error {
	switch s.peek() {
	case 't':
		if err := s.literal("true"); err != nil {
			return err
		}
		*dst = true
		return nil
	case 'f':
		if err := s.literal("false"); err != nil {
			return err
		}
		*dst = false
		return nil
	case 'n':
		if s.null() {
			return nil
		}
	}
	if k := s.kind(); k != "no value" {
		return vigil.Invalid(name, "must be a boolean, got %s", k)
	}
	return s.unexpected()
}

// attrs reads an object of strings into *dst (a repeated key keeps the
// last value); null clears it.
func (s *scanner) attrs(dst *map[string]string) error {
	if s.null() {
		*dst = nil
		return nil
	}
	if s.peek() != '{' {
		if k := s.kind(); k != "no value" {
			return vigil.Invalid("attrs", "must be a JSON object of strings, got %s", k)
		}
		return s.unexpected()
	}
	m := *dst
	if m == nil {
		m = map[string]string{}
	}
	err := s.object(func(key []byte) error {
		k := string(key)
		if s.peek() != '"' {
			if kind := s.kind(); kind != "no value" {
				return vigil.Invalid("attrs."+k, "must be a string, got %s", kind)
			}
			return s.unexpected()
		}
		v, err := s.str(nil)
		if err != nil {
			return err
		}
		m[k] = string(v)
		return nil
	})
	*dst = m
	return err
}

// appendEvent appends the JSON of e to b, byte for byte what json.Marshal(e)
// writes (field order, omitempty, sorted attrs, HTML-safe escaping), without
// reflection. TestAppendEvent compares the two and fails when vigil.Event
// gains a field.
func appendEvent(b []byte, e *vigil.Event) []byte {
	b = append(b, `{"service":`...)
	b = appendString(b, e.Service)
	b = append(b, `,"level":`...)
	b = strconv.AppendInt(b, int64(e.Level), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if !e.At.IsZero() {
		b = append(b, `,"at":`...)
		b = appendTime(b, e.At)
	}
	if !e.Received.IsZero() {
		b = append(b, `,"received":`...)
		b = appendTime(b, e.Received)
	}
	if e.Alert {
		b = append(b, `,"alert":true`...)
	}
	if len(e.Attrs) > 0 {
		b = append(b, `,"attrs":{`...)
		keys := make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, e.Attrs[k])
		}
		b = append(b, '}')
	}
	if e.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, e.ID)
	}
	if e.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, e.Seq, 10)
	}
	return append(b, '}')
}
