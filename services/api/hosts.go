package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/httpx"
)

// History limits: a series has at most ?points= points, 500 by default and
// at most 5000; without ?from= it covers the last 24 hours.
const (
	defaultHistoryPoints = 500
	maxHistoryPoints     = 5000
	defaultHistorySpan   = 24 * time.Hour
	// hostReads is how many hosts of a page are read at once.
	hostReads = 16
)

// hostRoutes mounts the host routes: GET /v1/hosts, /v1/hosts/{id} and
// /v1/hosts/{id}/history.
func (r *Role) hostRoutes(rt chi.Router) {
	rt.Get("/v1/hosts", r.listHosts)
	rt.Get("/v1/hosts/{id}", r.getHost)
	rt.Get("/v1/hosts/{id}/history", r.hostHistory)
}

// listHosts serves GET /v1/hosts?limit=N&cursor=C: a page ({"items",
// "next_cursor"}) of vigil.HostSummary, the latest of each host in KV bucket
// vigil_hosts, sorted by host id. 400 names limit or cursor; 503 when
// JetStream does not answer.
func (r *Role) listHosts(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	limit := r.cfg.DefaultLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > r.cfg.MaxLimit {
			httpx.WriteError(w, req, r.log, vigil.Invalid("limit", "must be an integer between 1 and %d", r.cfg.MaxLimit))
			return
		}
		limit = n
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.Strict().DecodeString(c)
		if err != nil || vigil.ValidateName(string(b)) != nil {
			httpx.WriteError(w, req, r.log, vigil.Invalid("cursor", "is not a cursor this server gave out"))
			return
		}
		after = string(b)
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.ReadTimeout)
	defer cancel()
	p, err := r.hostPage(ctx, after, limit)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// hostPage lists the host ids in vigil_hosts, sorts them, and reads the
// latest stats of the limit hosts after the id after.
func (r *Role) hostPage(ctx context.Context, after string, limit int) (*httpx.Page[vigil.HostSummary], error) {
	kv := r.assets.Hosts
	lister, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list hosts: %w: %w", vigil.ErrUnavailable, err)
	}
	var ids []string
	if lister != nil {
		for tok := range lister.Keys() {
			id, err := vigil.NameFromToken(tok)
			if err != nil {
				r.log.Warn("skipping host key that is no token", "key", tok)
				continue
			}
			if id > after {
				ids = append(ids, id)
			}
		}
		if err := lister.Stop(); err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("list hosts: %w: %w", vigil.ErrUnavailable, ctx.Err())
		}
	}
	slices.Sort(ids)
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	items := make([]*vigil.HostSummary, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hostReads)
	for i, id := range ids {
		g.Go(func() error {
			s, err := r.latestHost(gctx, id, false)
			if errors.Is(err, vigil.ErrNotFound) {
				return nil // deleted since the listing
			}
			if err != nil {
				return err
			}
			sum := s.Summary()
			items[i] = &sum
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p := &httpx.Page[vigil.HostSummary]{Items: make([]vigil.HostSummary, 0, len(items))}
	for _, it := range items {
		if it != nil {
			p.Items = append(p.Items, *it)
		}
	}
	if more {
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(ids[len(ids)-1]))
	}
	return p, nil
}

// getHost serves GET /v1/hosts/{id}: the host's latest vigil.HostStats.
// 400 names id; 404 for a host that never sent stats.
func (r *Role) getHost(w http.ResponseWriter, req *http.Request) {
	id, err := hostID(req)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.ReadTimeout)
	defer cancel()
	s, err := r.latestHost(ctx, id, true)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s)
}

// latestHost returns the latest stats of host id. With fresh it reads the
// last message of the host's subject in VIGIL_HOST_STATS, which holds a
// snapshot from the moment its publish was acknowledged, and falls back to
// KV bucket vigil_hosts, which follows the stream by its source a moment
// later but keeps hosts whose history has aged out. Errors wrap
// vigil.ErrNotFound or vigil.ErrUnavailable.
func (r *Role) latestHost(ctx context.Context, id string, fresh bool) (*vigil.HostStats, error) {
	var data []byte
	if fresh {
		m, err := r.assets.HostStats.GetLastMsgForSubject(ctx, vigil.HostStatsSubject(id))
		switch {
		case err == nil:
			data = m.Data
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, fmt.Errorf("read stats of host %q: %w: %w", id, vigil.ErrUnavailable, err)
		}
	}
	if data == nil {
		e, err := r.assets.Hosts.Get(ctx, vigil.Token(id))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, fmt.Errorf("host %q: %w", id, vigil.ErrNotFound)
		case err != nil:
			return nil, fmt.Errorf("read stats of host %q: %w: %w", id, vigil.ErrUnavailable, err)
		}
		data = e.Value()
	}
	var s vigil.HostStats
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode stats of host %q: %w", id, err)
	}
	s.Host = id
	return &s, nil
}

// HostHistory is the answer of GET /v1/hosts/{id}/history: the series of
// one metric (vigil.HostMetric syntax) of one host between From and To.
// Step is the bucket width in seconds: the range is cut into ?points=
// buckets by arrival time and each point is the first snapshot that arrived
// in its bucket (a sample, not an average).
type HostHistory struct {
	Host   string         `json:"host"`
	Metric string         `json:"metric"`
	From   time.Time      `json:"from"`
	To     time.Time      `json:"to"`
	Step   vigil.Seconds  `json:"step"`
	Points []HistoryPoint `json:"points"`
}

// HistoryPoint is one point of a series: the snapshot's collection time and
// the metric's value in its unit (see vigil.HostMetric).
type HistoryPoint struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// hostHistory serves GET /v1/hosts/{id}/history?metric=M&from=T&to=T&points=N.
// metric is a vigil.HostMetric ("cpu_percent", "disk_percent{mount=/}"); a
// label may also be given as ?mount=, ?interface= or ?name=. from and to
// are RFC 3339 times or Unix seconds (default: the last 24 h up to now);
// points is 1..5000 (default 500). 400 names the parameter; 404 for a host
// with no stats in the stream.
func (r *Role) hostHistory(w http.ResponseWriter, req *http.Request) {
	id, err := hostID(req)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	hq, err := r.parseHistoryQuery(req.URL.Query())
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.ReadTimeout)
	defer cancel()
	h, err := r.history(ctx, id, hq)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h)
}

type historyQuery struct {
	metric   vigil.HostMetric
	from, to time.Time
	points   int
}

func (r *Role) parseHistoryQuery(q url.Values) (historyQuery, error) {
	hq := historyQuery{points: defaultHistoryPoints, to: r.now().UTC()}
	ms := q.Get("metric")
	if ms == "" {
		return hq, vigil.Invalid("metric", "is required (%s)", vigil.HostMetricNames())
	}
	if !strings.Contains(ms, "{") {
		for _, label := range []string{"mount", "interface", "name"} {
			if v := q.Get(label); v != "" {
				ms += "{" + label + "=" + strconv.Quote(v) + "}"
				break
			}
		}
	}
	m, err := vigil.ParseHostMetric(ms)
	if err != nil {
		return hq, err
	}
	hq.metric = m
	if v := q.Get("to"); v != "" {
		if hq.to, err = parseTimeParam("to", v); err != nil {
			return hq, err
		}
	}
	hq.from = hq.to.Add(-defaultHistorySpan)
	if v := q.Get("from"); v != "" {
		if hq.from, err = parseTimeParam("from", v); err != nil {
			return hq, err
		}
	}
	if !hq.from.Before(hq.to) {
		return hq, vigil.Invalid("from", "must be before to (%s)", hq.to.Format(time.RFC3339))
	}
	if v := q.Get("points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryPoints {
			return hq, vigil.Invalid("points", "must be an integer between 1 and %d", maxHistoryPoints)
		}
		hq.points = n
	}
	return hq, nil
}

// parseTimeParam reads an RFC 3339 time or a number of Unix seconds.
func parseTimeParam(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, vigil.Invalid(name, "want an RFC 3339 time or Unix seconds, got %q", v)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// history samples the host's subject of VIGIL_HOST_STATS. The range is cut
// into hq.points buckets; for each bucket one direct get asks for the first
// message of the subject at or after the bucket's start time (JetStream's
// start_time + next_by_subj, answered from the stream's time index), and
// the search skips straight to the bucket after the message found. So a
// series costs at most one read per bucket and per stored snapshot,
// whichever is fewer, however long the history.
func (r *Role) history(ctx context.Context, id string, hq historyQuery) (*HostHistory, error) {
	span := hq.to.Sub(hq.from)
	step := span / time.Duration(hq.points)
	if step <= 0 {
		step = 1
	}
	h := &HostHistory{Host: id, Metric: hq.metric.String(), From: hq.from, To: hq.to, Step: vigil.Seconds(step), Points: []HistoryPoint{}}
	subject := vigil.HostStatsSubject(id)
	found := false
	for t := hq.from; t.Before(hq.to); {
		m, err := r.directGetAfter(ctx, subject, t)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read history of host %q: %w: %w", id, vigil.ErrUnavailable, err)
		}
		found = true
		if !m.Time.Before(hq.to) {
			break
		}
		var s vigil.HostStats
		if err := json.Unmarshal(m.Data, &s); err != nil {
			r.log.Warn("skipping undecodable host stats", "host", id, "seq", m.Sequence, "err", err)
		} else if v, ok := s.Value(hq.metric); ok {
			at := s.At
			if at.IsZero() {
				at = m.Time
			}
			h.Points = append(h.Points, HistoryPoint{At: at.UTC(), Value: v})
		}
		next := hq.from.Add((m.Time.Sub(hq.from)/step + 1) * step)
		if !next.After(t) { // a message before t cannot come back; never loop in place
			next = t.Add(step)
		}
		t = next
	}
	if !found {
		if _, err := r.latestHost(ctx, id, true); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// directGetAfter returns the first message on subject stored at or after t,
// with a direct get on VIGIL_HOST_STATS (allow_direct is on). It returns
// jetstream.ErrMsgNotFound when there is none.
func (r *Role) directGetAfter(ctx context.Context, subject string, t time.Time) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(struct {
		StartTime time.Time `json:"start_time"`
		NextBy    string    `json:"next_by_subj"`
	}{t, subject})
	if err != nil {
		return nil, err
	}
	nc := r.assets.JS.Conn()
	resp, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+vigil.StreamHostStats, body)
	if err != nil {
		return nil, fmt.Errorf("direct get: %w", err)
	}
	return rawStreamMsg(resp)
}

// rawStreamMsg reads a direct get answer: the message with its Nats-Sequence
// and Nats-Time-Stamp headers, or a 404 status without data.
func rawStreamMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	if len(m.Data) == 0 {
		switch st := m.Header.Get("Status"); st {
		case "404":
			return nil, jetstream.ErrMsgNotFound
		case "":
		default:
			return nil, fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: sequence header %q", m.Header.Get(jetstream.SequenceHeader))
	}
	tm, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("direct get: time header %q", m.Header.Get(jetstream.TimeStampHeaer))
	}
	return &jetstream.RawStreamMsg{Subject: m.Header.Get(jetstream.SubjectHeader), Sequence: seq, Time: tm, Data: m.Data}, nil
}

// hostID returns the {id} path parameter, path-unescaped, as a valid name;
// errors name the field "id".
func hostID(req *http.Request) (string, error) {
	id := chi.URLParam(req, "id")
	if req.URL.RawPath != "" {
		u, err := url.PathUnescape(id)
		if err != nil {
			return "", vigil.Invalid("id", "is not a valid path-escaped host id")
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
