package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/httpx"
)

// maxIdempotencyKey bounds the Idempotency-Key of a stats request, in bytes;
// it becomes the Nats-Msg-Id as it is.
const maxIdempotencyKey = 256

// HostStatsAnswer is the 202 body of POST /v1/hosts/{id}/stats: the host,
// the stream sequence of the stored snapshot in VIGIL_HOST_STATS, and
// whether it was a duplicate of an earlier request with the same
// Idempotency-Key (then Seq is the earlier one's).
type HostStatsAnswer struct {
	Host      string `json:"host"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// handleHostStats serves POST /v1/hosts/{id}/stats: a vigil.HostStats as
// JSON, at most MaxBody bytes. The host is the path's id (a body "host" must
// be empty or equal it). The snapshot is validated, re-encoded (unknown
// fields are dropped) and published to vigil.HostStatsSubject(id), with the
// Idempotency-Key header, if any, as its Nats-Msg-Id; KV bucket vigil_hosts
// follows by its source. 202 HostStatsAnswer after the JetStream ack; 400
// naming the field; 413 over the size limit; 415 for a body that is not
// JSON; 503 when JetStream does not answer.
func (r *Role) handleHostStats(w http.ResponseWriter, hr *http.Request) {
	ans, err := r.storeHostStats(hr.Context(), w, hr)
	if err != nil {
		httpx.WriteError(w, hr, r.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, ans)
}

func (r *Role) storeHostStats(ctx context.Context, w http.ResponseWriter, hr *http.Request) (*HostStatsAnswer, error) {
	id, err := hostParam(hr, "id")
	if err != nil {
		return nil, err
	}
	if _, err := mediaForm(hr.Header.Get("Content-Type"), false, formJSON); err != nil {
		return nil, err
	}
	key := hr.Header.Get(headerIdempotencyKey)
	if len(key) > maxIdempotencyKey || strings.ContainsFunc(key, func(c rune) bool { return c <= ' ' || c > '~' }) {
		return nil, vigil.Invalid(headerIdempotencyKey, "must be at most %d printable ASCII characters", maxIdempotencyKey)
	}
	if hr.ContentLength > r.cfg.MaxBody {
		return nil, fmt.Errorf("body of %d bytes is over the limit of %d bytes: %w", hr.ContentLength, r.cfg.MaxBody, vigil.ErrTooLarge)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, r.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, fmt.Errorf("body is over the limit of %d bytes: %w", r.cfg.MaxBody, vigil.ErrTooLarge)
	case err != nil:
		return nil, vigil.Invalid("", "could not read the body: %v", err)
	}
	s, err := decodeHostStats(body)
	if err != nil {
		return nil, err
	}
	if s.Host != "" && s.Host != id {
		return nil, vigil.Invalid("host", "is %q but the path names host %q", s.Host, id)
	}
	s.Host = id
	if err := s.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode host stats: %w", err)
	}
	msg := &nats.Msg{Subject: vigil.HostStatsSubject(id), Data: data}
	if key != "" {
		msg.Header = nats.Header{jetstream.MsgIDHeader: []string{key}}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	ack, err := r.assets.JS.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("store host stats: %w: %w", vigil.ErrUnavailable, err)
	}
	return &HostStatsAnswer{Host: id, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// decodeHostStats decodes one JSON HostStats object. A value of the wrong
// type is a *vigil.FieldError naming its JSON path ("cpu.count"); trailing
// data after the object is an error.
func decodeHostStats(body []byte) (*vigil.HostStats, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, vigil.Invalid("", "the body is empty; want a JSON host stats object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var s vigil.HostStats
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, vigil.Invalid(te.Field, "want a JSON %s, got %s", te.Type, te.Value)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return nil, vigil.Invalid("at", "want an RFC 3339 time: %v", pe)
		}
		return nil, vigil.Invalid("", "not a JSON host stats object: %v", err)
	}
	// dec.More is not enough: it says false for a stray "]" or "}".
	if err := trailing(body, dec); err != nil {
		return nil, err
	}
	return &s, nil
}

// hostParam returns the host id in URL parameter key, path-unescaped, as a
// valid name; errors name the field "id".
func hostParam(hr *http.Request, key string) (string, error) {
	id := chi.URLParam(hr, key)
	if hr.URL.RawPath != "" {
		u, err := url.PathUnescape(id)
		if err != nil {
			return "", vigil.Invalid("id", "bad escaping in the path: %v", err)
		}
		id = u
	}
	if err := vigil.ValidateName(id); err != nil {
		var fe *vigil.FieldError
		if errors.As(err, &fe) {
			return "", vigil.Invalid("id", "%s", fe.Msg)
		}
		return "", err
	}
	return id, nil
}
