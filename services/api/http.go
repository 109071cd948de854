package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/httpx"
)

// listServices serves GET /v1/services?limit=N&cursor=C&status=down,late:
// a page of ServiceStatus sorted by name, from the view.
func (r *Role) listServices(w http.ResponseWriter, req *http.Request) {
	if !r.ready.Load() {
		catchingUp(w)
		return
	}
	q := req.URL.Query()
	limit, err := r.parseLimit(q)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	after, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	filter, err := parseStatuses(q["status"])
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	items, more := r.view.page(after, limit, filter, r.now())
	p := httpx.Page[vigil.ServiceStatus]{Items: items}
	if more {
		p.NextCursor = encodeCursor(items[len(items)-1].Name)
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// getService serves GET /v1/services/{name} fresh from the KV buckets, so a
// client sees its own pulse at once.
func (r *Role) getService(w http.ResponseWriter, req *http.Request) {
	name, err := pathName(req, "name")
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.ReadTimeout)
	defer cancel()
	s, err := r.service(ctx, name)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s.StatusView(r.now()))
}

// service reads name's record and verdict from the KV buckets. It returns
// an error wrapping vigil.ErrNotFound when there is no record (or it was
// deleted), and one wrapping vigil.ErrUnavailable when JetStream fails.
func (r *Role) service(ctx context.Context, name string) (*vigil.Service, error) {
	tok := vigil.Token(name)
	e, err := r.assets.Pulses.Get(ctx, tok)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("service %q: %w", name, vigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read record of %q: %w: %w", name, vigil.ErrUnavailable, err)
	}
	s := &vigil.Service{}
	if err := json.Unmarshal(e.Value(), &s.Record); err != nil {
		return nil, fmt.Errorf("decode record of %q: %w", name, err)
	}
	s.Service, s.Seq = name, e.Revision()
	ve, err := r.assets.Services.Get(ctx, tok)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("read verdict of %q: %w: %w", name, vigil.ErrUnavailable, err)
	default:
		s.Verdict = &vigil.Verdict{}
		if err := json.Unmarshal(ve.Value(), s.Verdict); err != nil {
			return nil, fmt.Errorf("decode verdict of %q: %w", name, err)
		}
	}
	return s, nil
}

// pathName returns the service name in URL parameter key, path-unescaped.
// chi matches on r.URL.RawPath when the request has one (the path held an
// escape such as %2F that Path cannot keep) and on the decoded r.URL.Path
// otherwise, so the parameter needs unescaping only in the first case;
// unescaping it always would turn a name like "100%" into an error.
func pathName(req *http.Request, key string) (string, error) {
	name := chi.URLParam(req, key)
	if req.URL.RawPath != "" {
		n, err := url.PathUnescape(name)
		if err != nil {
			return "", vigil.Invalid("name", "is not a valid path-escaped name")
		}
		name = n
	}
	if err := vigil.ValidateName(name); err != nil {
		return "", vigil.PrefixField("name", withoutField(err))
	}
	return name, nil
}

// withoutField drops the field of a *vigil.FieldError so it can be renamed.
func withoutField(err error) error {
	var fe *vigil.FieldError
	if errors.As(err, &fe) {
		return &vigil.FieldError{Msg: fe.Msg}
	}
	return err
}

func (r *Role) parseLimit(q url.Values) (int, error) {
	if !q.Has("limit") {
		return r.cfg.DefaultLimit, nil
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > r.cfg.MaxLimit {
		return 0, vigil.Invalid("limit", "must be an integer between 1 and %d", r.cfg.MaxLimit)
	}
	return n, nil
}

// parseStatuses reads ?status=down,late (repeatable) into a filter.
func parseStatuses(vals []string) (statusFilter, error) {
	f := statusFilter{}
	for _, v := range vals {
		for s := range strings.SplitSeq(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue // "?status=" and "down,,late" ask for nothing odd
			}
			st := vigil.Status(strings.ToLower(s))
			if !st.Valid() {
				return nil, vigil.Invalid("status", "unknown status %q (up, late, down, cancelled)", s)
			}
			f[st] = true
		}
	}
	return f, nil
}

// encodeCursor makes the opaque cursor that resumes a list after name.
func encodeCursor(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || vigil.ValidateName(string(b)) != nil {
		return "", vigil.Invalid("cursor", "is not a cursor this server gave out")
	}
	return string(b), nil
}

// catchingUp answers 503 {"error":"catching up"} with Retry-After: 1, for
// a list whose in-memory view has not yet read its stream or bucket.
func catchingUp(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	httpx.WriteJSON(w, http.StatusServiceUnavailable, httpx.ErrorBody{Error: "catching up"})
}
