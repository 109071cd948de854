package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/httpx"
)

// fetchParallel is how many direct gets one page runs at once.
const fetchParallel = 16

// applyEvent feeds one message of VIGIL_EVENTS into the events index. The
// service comes from the subject's token, the rest from the body.
func (r *Role) applyEvent(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	tok, ok := strings.CutPrefix(m.Subject(), "vigil.event.")
	if !ok {
		return
	}
	var e struct {
		Level    vigil.Level `json:"level"`
		Message  string      `json:"message"`
		Received time.Time   `json:"received"`
	}
	if err := json.Unmarshal(m.Data(), &e); err != nil {
		r.log.Warn("indexing undecodable event", "seq", md.Sequence.Stream, "err", err)
	}
	if e.Received.IsZero() {
		e.Received = md.Timestamp
	}
	r.events.add(md.Sequence.Stream, tok, e.Received.UnixNano(), e.Level, 0, e.Message)
}

// applyAlert feeds one message of VIGIL_ALERTS into the alerts index:
// subject vigil.alert.<kind>[.<token>].
func (r *Role) applyAlert(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	rest, ok := strings.CutPrefix(m.Subject(), "vigil.alert.")
	if !ok {
		return
	}
	kind, tok, _ := strings.Cut(rest, ".")
	var a struct {
		Level   vigil.Level `json:"level"`
		Message string      `json:"message"`
		At      time.Time   `json:"at"`
	}
	if err := json.Unmarshal(m.Data(), &a); err != nil {
		r.log.Warn("indexing undecodable alert", "seq", md.Sequence.Stream, "err", err)
	}
	if a.At.IsZero() {
		a.At = md.Timestamp
	}
	r.alerts.add(md.Sequence.Stream, tok, a.At.UnixNano(), a.Level, alertKinds[kind], a.Message)
}

// listEvents serves GET /v1/events: a page of vigil.Event, newest first
// unless order=asc, from the last EventsWindow unless from is given.
func (r *Role) listEvents(w http.ResponseWriter, req *http.Request) {
	serveList(r, w, req, r.events, r.assets.Events, eventParams, r.cfg.EventsWindow, nil, decodeEvent)
}

// listAlerts serves GET /v1/alerts: a page of vigil.Alert, newest first
// unless order=asc, over the whole retention unless from is given.
func (r *Role) listAlerts(w http.ResponseWriter, req *http.Request) {
	serveList(r, w, req, r.alerts, r.assets.Alerts, alertParams, 0, nil, decodeAlert)
}

// serviceHistory serves GET /v1/services/{name}/history: the service's
// down and recovered alerts, the history of its status flips, in the shape
// and order of GET /v1/alerts.
func (r *Role) serviceHistory(w http.ResponseWriter, req *http.Request) {
	name, err := pathName(req, "name")
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	flips := func(p *listParams) {
		p.exact = []string{name}
		p.kinds = 1<<alertKinds[string(vigil.AlertDown)] | 1<<alertKinds[string(vigil.AlertRecovered)]
	}
	serveList(r, w, req, r.alerts, r.assets.Alerts, historyParams, 0, flips, decodeAlert)
}

// serveList runs one list query: parse the parameters (adjust, when set,
// fixes some), find the page's sequences in ix within the scan budget, and
// fetch and decode those messages from stream s.
func serveList[T any](r *Role, w http.ResponseWriter, req *http.Request, ix *logIndex, s jetstream.Stream,
	allowed []string, window time.Duration, adjust func(*listParams), decode func(*jetstream.RawStreamMsg) (T, error),
) {
	if !ix.ready.Load() {
		catchingUp(w)
		return
	}
	p, err := r.parseList(req.URL.Query(), allowed, window)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	if adjust != nil {
		adjust(p)
	}
	q := ix.query(p)
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.ScanBudget)
	seqs, next := ix.find(ctx, q)
	cancel()
	ctx, cancel = context.WithTimeout(req.Context(), r.cfg.ReadTimeout)
	defer cancel()
	items, err := fetch(ctx, r.log, s, seqs, decode)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, httpx.Page[T]{Items: items, NextCursor: encodeSeqCursor(next)})
}

// query turns parsed parameters into a query on ix, resolving the service
// filters to ids: service_exact names the services, service matches their
// names; with both, a service must pass both.
func (ix *logIndex) query(p *listParams) *query {
	q := &query{
		level: int32(min(p.level, vigil.MaxEventLevel)), kinds: p.kinds,
		from: p.from, to: p.to, msg: p.folded, desc: p.desc, cursor: p.cursor, limit: p.limit,
	}
	if p.exact != nil {
		q.svcs = ix.lookup(p.exact)
	}
	if p.service != nil {
		byRE := ix.matchServices(p.service)
		if q.svcs == nil {
			q.svcs = byRE
		} else {
			both := q.svcs[:0]
			for _, id := range q.svcs {
				for _, b := range byRE {
					if id == b {
						both = append(both, id)
						break
					}
				}
			}
			q.svcs = both
		}
	}
	return q
}

// fetch reads the messages at seqs from s with direct gets, fetchParallel at
// a time, and decodes them in order. A message retention removed since it
// was indexed is left out, and so is one that does not decode (logged on
// log); a read error wraps vigil.ErrUnavailable.
func fetch[T any](ctx context.Context, log *slog.Logger, s jetstream.Stream, seqs []uint64, decode func(*jetstream.RawStreamMsg) (T, error)) ([]T, error) {
	msgs := make([]*jetstream.RawStreamMsg, len(seqs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	for i, seq := range seqs {
		g.Go(func() error {
			m, err := s.GetMsg(gctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read message %d: %w: %w", seq, vigil.ErrUnavailable, err)
			}
			msgs[i] = m
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	items := make([]T, 0, len(msgs))
	for _, m := range msgs {
		if m == nil {
			continue
		}
		v, err := decode(m)
		if err != nil {
			log.Warn("skipping undecodable message", "stream", s.CachedInfo().Config.Name, "err", err)
			continue
		}
		items = append(items, v)
	}
	return items, nil
}

func decodeEvent(m *jetstream.RawStreamMsg) (vigil.Event, error) {
	var e vigil.Event
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return e, fmt.Errorf("decode event %d: %w", m.Sequence, err)
	}
	if tok, ok := strings.CutPrefix(m.Subject, "vigil.event."); ok {
		if name, err := vigil.NameFromToken(tok); err == nil {
			e.Service = name // the subject is what the index filtered on
		}
	}
	e.Seq = m.Sequence
	return e, nil
}

func decodeAlert(m *jetstream.RawStreamMsg) (vigil.Alert, error) {
	var a vigil.Alert
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return a, fmt.Errorf("decode alert %d: %w", m.Sequence, err)
	}
	a.Seq = m.Sequence
	return a, nil
}
