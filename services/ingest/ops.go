package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus"
)

// cancelAttempts bounds the read-modify-write loop of a cancel that keeps
// losing to concurrent pulses.
const cancelAttempts = 5

// request is one intake call, whatever its transport: the body and its
// Content-Type, the idempotency key ("" for none), and the service named by
// the path of a cancel.
type request struct {
	contentType string
	body        []byte
	key         string
	service     string
	// form is the body form when the Content-Type header is missing.
	form form
	// readErr is why the body could not be read (over the size limit); it
	// is reported after the content type is checked.
	readErr error
	// origin is stored as Record.Origin of pulses ("" for native intake).
	origin string
}

// acceptPulses is POST /v1/pulses and vigil.in.pulse: decode and validate
// every pulse, then store each as a Record with a JetStream publish to its
// PulseSubject. It returns the 202 body: the stored record with "seq" for a
// single pulse, {"accepted": N, "duplicates": D} for a batch.
func (r *Role) acceptPulses(ctx context.Context, req request) (_ []byte, err error) {
	f, err := mediaForm(req.contentType, true, req.form)
	if err != nil {
		return nil, err
	}
	if err := r.checkBody(req); err != nil {
		return nil, err
	}
	pulses, single, err := decodePulses(req.body, f, r.cfg.MaxBatch)
	if err != nil {
		return nil, err
	}
	for i := range pulses {
		if err := pulses[i].Validate(); err != nil {
			if single {
				return nil, err
			}
			return nil, vigil.PrefixField(index(i), err)
		}
	}
	var token string
	if r.quota != nil {
		added, err := r.quota.admit(ctx, pulses)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				r.quota.release(ctx, added)
			}
		}()
		token = auth.TokenName(ctx)
	}
	now := r.now().UTC()
	msgs := make([]*nats.Msg, len(pulses))
	for i := range pulses {
		rec := vigil.Record{Op: vigil.OpPulse, Pulse: pulses[i], Origin: req.origin, At: now, ID: r.msgID(req.key, "pulse", pulses[i].Service, i)}
		if rec.Grace == nil {
			g := r.grace
			rec.Grace = &g
		}
		data := appendRecord(make([]byte, 0, 160+len(rec.Service)+len(rec.Message)+len(rec.Host)), &rec)
		msgs[i] = r.newMsg(vigil.PulseSubject(rec.Service), data, req.key, rec.ID)
		if token != "" {
			if msgs[i].Header == nil {
				msgs[i].Header = nats.Header{}
			}
			msgs[i].Header.Set(headerToken, token)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if single {
		ack, err := r.publishOne(ctx, msgs[0])
		if err != nil {
			return nil, fmt.Errorf("store pulse: %w: %w", vigil.ErrUnavailable, err)
		}
		r.metrics.accepted.Inc()
		data := msgs[0].Data
		if ack.dup {
			data = r.original(ctx, vigil.Token(pulses[0].Service), ack.seq, data)
		}
		return withSeq(data, ack.seq, ack.dup), nil
	}
	ok, dups, err := r.publishAll(ctx, msgs)
	r.metrics.accepted.Add(float64(ok))
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 48)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(ok), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(dups), 10)
	return append(b, '}'), nil
}

// original returns the value stored at seq under key when a publish was a
// duplicate, so a retried request gets the answer of the first one; it falls
// back to fallback when that value has since been replaced.
func (r *Role) original(ctx context.Context, key string, seq uint64, fallback []byte) []byte {
	e, err := r.assets.Pulses.GetRevision(ctx, key, seq)
	if err != nil {
		return fallback
	}
	return e.Value()
}

// publishAll publishes msgs with the shared publisher and waits for every PubAck. It
// returns how many were acknowledged and how many of those were duplicates;
// the error wraps vigil.ErrUnavailable and says how many were stored.
func (r *Role) publishAll(ctx context.Context, msgs []*nats.Msg) (ok, dups int, err error) {
	return r.publishBatch(ctx, "pulses", msgs)
}

// publishBatch is publishAll for messages that are not pulses; what names
// them in the error ("events").
func (r *Role) publishBatch(ctx context.Context, what string, msgs []*nats.Msg) (ok, dups int, err error) {
	acks, err := r.pub.publish(ctx, msgs)
	for _, a := range acks {
		switch {
		case a.err != nil:
			if err == nil {
				err = a.err
			}
		case a.dup:
			ok++
			dups++
		default:
			ok++
		}
	}
	if err != nil {
		return ok, dups, fmt.Errorf("store %s: %d of %d stored before the failure: %w: %w", what, ok, len(msgs), vigil.ErrUnavailable, err)
	}
	return ok, dups, nil
}

// publishOne stores m with the shared publisher (see publisher) and
// returns its ack; the error is the ack's or ctx's.
func (r *Role) publishOne(ctx context.Context, m *nats.Msg) (pubAck, error) {
	acks, err := r.pub.publish(ctx, []*nats.Msg{m})
	if err == nil {
		err = acks[0].err
	}
	return acks[0], err
}

// cancel is DELETE /v1/services/{name} and vigil.in.cancel: it re-reads the
// service's record and stores it again with op "cancel", expecting the
// record's revision so that a pulse arriving in between is never overwritten
// (the cancel is retried on that pulse instead). An unknown service wraps
// vigil.ErrNotFound; an already-cancelled one is answered with its stored
// record unchanged. It returns the 200 body: the stored record with "seq".
func (r *Role) cancel(ctx context.Context, req request) ([]byte, error) {
	name := req.service
	if err := vigil.ValidateName(name); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	subject := vigil.PulseSubject(name)
	for range cancelAttempts {
		// Read through the stream leader: a follower's direct get may lag, and
		// an "already cancelled" answer from a stale read would acknowledge a
		// cancel that a newer pulse has undone.
		e, err := bus.LastForSubject(ctx, r.assets.JS, "KV_"+vigil.BucketPulses, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && e.Header.Get(kvOperation) != "" {
			return nil, fmt.Errorf("service %q: %w", name, vigil.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("read service %q: %w: %w", name, vigil.ErrUnavailable, err)
		}
		var rec vigil.Record
		if err := json.Unmarshal(e.Data, &rec); err != nil {
			return nil, fmt.Errorf("read service %q: record at revision %d: %w", name, e.Sequence, err)
		}
		if rec.Op == vigil.OpCancel {
			return withSeq(e.Data, e.Sequence, false), nil
		}
		rec.Op = vigil.OpCancel
		rec.CancelledAt = r.now().UTC()
		rec.ID = r.msgID(req.key, "cancel", name, 0)
		rec.Seq = 0
		data := appendRecord(nil, &rec)
		m := r.newMsg(subject, data, req.key, rec.ID)
		ack, err := r.assets.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(e.Sequence))
		if wrongLastSeq(err) {
			continue // a pulse or cancel landed since the read; judge it again
		}
		if err != nil {
			return nil, fmt.Errorf("store cancel of %q: %w: %w", name, vigil.ErrUnavailable, err)
		}
		return withSeq(data, ack.Sequence, ack.Duplicate), nil
	}
	return nil, fmt.Errorf("cancel %q: the service changed %d times while cancelling: %w", name, cancelAttempts, vigil.ErrUnavailable)
}

// kvOperation is the header that marks a KV delete or purge (nats.go's
// jetstream KV, ADR-8); a key whose last message carries it has no value.
const kvOperation = "KV-Operation"

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// raiseAlert is POST /v1/alerts and vigil.in.alert: decode and validate a
// vigil.ManualAlert and store it as a vigil.Alert of kind manual on its
// AlertSubject, with its ID as the JetStream message id. It returns the 202
// body: the stored alert with "seq".
func (r *Role) raiseAlert(ctx context.Context, req request) ([]byte, error) {
	if _, err := mediaForm(req.contentType, false, formJSON); err != nil {
		return nil, err
	}
	if err := r.checkBody(req); err != nil {
		return nil, err
	}
	m, err := decodeAlert(req.body)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	a := vigil.Alert{
		ID:      "manual:" + r.msgID(req.key, "alert", m.Service, 0),
		Kind:    vigil.AlertManual,
		Service: m.Service,
		Title:   m.Title,
		Message: m.Message,
		Level:   m.Level,
		Owner:   m.Owner,
		At:      r.now().UTC(),
	}
	data, err := json.Marshal(&a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	msg := &nats.Msg{Subject: vigil.AlertSubject(vigil.AlertManual, m.Service), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, a.ID)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	ack, err := r.assets.JS.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("store alert: %w: %w", vigil.ErrUnavailable, err)
	}
	if !ack.Duplicate {
		r.metrics.manualAlerts.Inc()
	}
	return withSeq(data, ack.Sequence, ack.Duplicate), nil
}

// newMsg returns the JetStream message for a record. The dedup header is set
// only for a request with an idempotency key: an id nobody will resend
// deduplicates nothing, and every id costs the server an entry for the whole
// dedup window (at 24k pulses/s, millions of entries).
func (r *Role) newMsg(subject string, data []byte, key, id string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: data}
	if key != "" {
		m.Header = nats.Header{jetstream.MsgIDHeader: []string{id}}
	}
	return m
}

// msgID returns the message id of item i of a request: a fresh NUID without
// an idempotency key, else the unpadded base64url of the first 16 bytes of
// SHA-256(key, op, service, i), so a retry of the same request maps every
// item to the same id.
func (r *Role) msgID(key, op, service string, i int) string {
	if key == "" {
		return nuid.Next()
	}
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{key, op, service} {
		h.Write(strconv.AppendInt(n[:0], int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	h.Write(strconv.AppendInt(n[:0], int64(i), 10))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:16])
}

// withSeq returns the JSON object obj with "seq" (and "duplicate": true)
// appended, which is exactly how the record or alert marshals with its Seq
// set, since seq is their last field.
func withSeq(obj []byte, seq uint64, dup bool) []byte {
	b := make([]byte, 0, len(obj)+40)
	b = append(b, obj[:len(obj)-1]...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	if dup {
		b = append(b, `,"duplicate":true`...)
	}
	return append(b, '}')
}

// checkBody reports a body that could not be read or is over MaxBody.
func (r *Role) checkBody(req request) error {
	if req.readErr != nil {
		return req.readErr
	}
	if int64(len(req.body)) > r.cfg.MaxBody {
		return fmt.Errorf("body is over the limit of %d bytes: %w", r.cfg.MaxBody, vigil.ErrTooLarge)
	}
	return nil
}

// errorJSON is the body of every error answer.
type errorJSON struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// answer maps an operation's result to its status and JSON body: okCode and
// body on success, else the error's status (400 invalid, 404 not found, 413
// too large, 415 media type, 403 over the service quota, 503 otherwise) and {"error", "field"}. It counts
// pulse rejections when pulses is set.
func (r *Role) answer(body []byte, err error, okCode int, pulses bool) (int, []byte) {
	if err == nil {
		return okCode, body
	}
	code, reason := http.StatusServiceUnavailable, reasonUnavailable
	switch {
	case errors.Is(err, vigil.ErrInvalid):
		code, reason = http.StatusBadRequest, reasonInvalid
	case errors.Is(err, vigil.ErrNotFound):
		code, reason = http.StatusNotFound, ""
	case errors.Is(err, vigil.ErrTooLarge):
		code, reason = http.StatusRequestEntityTooLarge, reasonTooLarge
	case errors.Is(err, vigil.ErrUnsupportedMedia):
		code, reason = http.StatusUnsupportedMediaType, reasonMediaType
	case errors.Is(err, errQuota):
		code, reason = http.StatusForbidden, reasonQuota
	}
	if pulses && reason != "" {
		r.metrics.rejectedBy[reason].Inc()
	}
	if code == http.StatusServiceUnavailable {
		r.log.Warn("intake failed", "err", err)
	}
	e := errorJSON{Error: err.Error()}
	var fe *vigil.FieldError
	if errors.As(err, &fe) {
		e.Field = fe.Field
	}
	b, merr := json.Marshal(e)
	if merr != nil {
		return code, []byte(`{"error":"internal error"}`)
	}
	return code, b
}
