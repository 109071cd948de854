package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/httpx"
)

// The live stream (GET /v1/stream) is Server-Sent Events
// (https://html.spec.whatwg.org/multipage/server-sent-events.html). Each
// client gets one ordered consumer per source it asked for, started right
// after the position its Last-Event-ID names (or at the end of the stream
// for a new client), so a reconnect resumes every source where it left off:
// nothing inside the retention is lost and nothing is sent twice.

// source is one kind of message the stream carries.
type source struct {
	name   string // SSE event type and ?types= value
	letter byte   // its key in the resume token
	stream string // JetStream stream
	// token returns the service token of a subject, "" for none.
	token func(subject string) string
	// exact returns the subject filter for one service token.
	exact func(tok string) string
}

// The sources, in ?types= bit order.
var sources = [...]source{
	{
		name: "events", letter: 'e', stream: vigil.StreamEvents,
		token: func(s string) string { return strings.TrimPrefix(s, "vigil.event.") },
		exact: func(tok string) string { return "vigil.event." + tok },
	},
	{
		name: "alerts", letter: 'a', stream: vigil.StreamAlerts,
		token: func(s string) string { return lastToken(s, 4) },
		exact: func(tok string) string { return "vigil.alert.*." + tok },
	},
	{
		name: "status", letter: 's', stream: "KV_" + vigil.BucketServices,
		token: func(s string) string { return strings.TrimPrefix(s, "$KV."+vigil.BucketServices+".") },
		exact: func(tok string) string { return "$KV." + vigil.BucketServices + "." + tok },
	},
	{
		name: "deliveries", letter: 'd', stream: vigil.StreamAttempts,
		token: func(s string) string { return lastToken(s, 4) },
		exact: func(tok string) string { return "vigil.attempt.*." + tok },
	},
}

const (
	srcEvents = iota
	srcAlerts
	srcStatus
	srcDeliveries
)

// streamTypes maps ?types= names to source numbers.
var streamTypes = map[string]uint8{"events": srcEvents, "alerts": srcAlerts, "status": srcStatus, "deliveries": srcDeliveries}

// lastToken returns token n (1-based) of a dotted subject when it is the
// last one, else "".
func lastToken(s string, n int) string {
	parts := strings.Split(s, ".")
	if len(parts) != n {
		return ""
	}
	return parts[n-1]
}

// positions are the last stream sequence a client has been sent, per source.
type positions [len(sources)]uint64

// resumeToken formats the positions of the sources in set as the SSE id:
// "e:123,a:45,s:6,d:7".
func resumeToken(p *positions, set uint8) string {
	b := make([]byte, 0, 48)
	for i, s := range sources {
		if set&(1<<i) == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, s.letter, ':')
		b = strconv.AppendUint(b, p[i], 10)
	}
	return string(b)
}

// parseResume reads a resume token; have says which sources it names.
func parseResume(s string) (p positions, have uint8, err error) {
	if s == "" {
		return p, 0, nil
	}
	bad := vigil.Invalid("Last-Event-ID", "is not an id this server sent (want e:N,a:N,s:N,d:N)")
	for part := range strings.SplitSeq(s, ",") {
		if len(part) < 3 || part[1] != ':' {
			return p, 0, bad
		}
		i := strings.IndexByte("easd", part[0])
		n, err := strconv.ParseUint(part[2:], 10, 64)
		if i < 0 || err != nil || have&(1<<i) != 0 {
			return p, 0, bad
		}
		p[i], have = n, have|1<<i
	}
	return p, have, nil
}

// streamMsg is one message on its way from a source's consumer to the
// client. data nil means the message was filtered out: only its position
// counts.
type streamMsg struct {
	src  int
	seq  uint64
	data []byte
}

// errSlowClient ends a stream whose client did not take a message within
// StreamSlowTimeout.
var errSlowClient = errors.New("client too slow")

// errStreamsEnded ends every stream when the role stops or the HTTP server
// shuts down.
var errStreamsEnded = errors.New("server shutting down")

// stream serves GET /v1/stream.
func (r *Role) stream(w http.ResponseWriter, req *http.Request) {
	p, err := r.parseList(req.URL.Query(), streamParams, 0)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	types := p.types
	if types == 0 {
		types = 1<<len(sources) - 1
	}
	lastID := req.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = p.lastID
	}
	pos, have, err := parseResume(lastID)
	if err != nil {
		httpx.WriteError(w, req, r.log, err)
		return
	}
	if n := r.streams.Add(1); n > int64(r.cfg.MaxStreams) {
		r.streams.Add(-1)
		httpx.WriteError(w, req, r.log, fmt.Errorf("%d live streams, the limit is %d: %w", n-1, r.cfg.MaxStreams, vigil.ErrUnavailable))
		return
	}
	defer r.streams.Add(-1)
	if srv, ok := req.Context().Value(http.ServerContextKey).(*http.Server); ok {
		r.endOnShutdown(srv)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	stop := context.AfterFunc(r.streamsCtx, func() { cancel(errStreamsEnded) })
	defer stop()

	c := &streamClient{role: r, p: p, types: types, pos: pos, out: make(chan streamMsg, r.cfg.StreamBuffer), cancel: cancel}
	if err := c.start(ctx, have); err != nil {
		c.stopAll()
		httpx.WriteError(w, req, r.log, err)
		return
	}
	defer c.stopAll()
	r.metrics.streamClients.Inc()
	defer r.metrics.streamClients.Dec()
	err = c.serve(ctx, w)
	// Too slow either way: its queue stayed full, or a write hit its deadline.
	if errors.Is(err, errSlowClient) || errors.Is(err, os.ErrDeadlineExceeded) {
		r.metrics.streamDropped.Inc()
		r.log.Info("dropped a slow stream client", "remote", req.RemoteAddr, "buffer", r.cfg.StreamBuffer, "timeout", r.cfg.StreamSlowTimeout)
	}
}

// streamClient is one live stream.
type streamClient struct {
	role    *Role
	p       *listParams
	types   uint8
	pos     positions // written by serve only
	skipped [len(sources)]atomic.Uint64
	out     chan streamMsg
	cancel  context.CancelCauseFunc
	ccs     []jetstream.ConsumeContext
	cons    []consumerRef
}

type consumerRef struct{ stream, name string }

// start creates the client's ordered consumers: each resumes right after
// its position in the resume token, or starts after the stream's current
// last message.
func (c *streamClient) start(ctx context.Context, have uint8) error {
	js := c.role.assets.JS
	var toks []string
	for _, n := range c.p.exact {
		toks = append(toks, vigil.Token(n))
	}
	for i, src := range sources {
		if c.types&(1<<i) == 0 {
			continue
		}
		if have&(1<<i) == 0 {
			s, err := js.Stream(ctx, src.stream)
			if err != nil {
				return fmt.Errorf("stream %s: %w: %w", src.stream, vigil.ErrUnavailable, err)
			}
			c.pos[i] = s.CachedInfo().State.LastSeq
		}
		var filters []string
		for _, t := range toks {
			filters = append(filters, src.exact(t))
		}
		cons, err := js.OrderedConsumer(ctx, src.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects:    filters,
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       c.pos[i] + 1,
			InactiveThreshold: 30 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("stream %s: %w: %w", src.stream, vigil.ErrUnavailable, err)
		}
		cc, err := cons.Consume(c.handler(ctx, i), jetstream.PullMaxMessages(64), jetstream.PullExpiry(5*time.Second))
		if err != nil {
			return fmt.Errorf("stream %s: %w: %w", src.stream, vigil.ErrUnavailable, err)
		}
		c.ccs = append(c.ccs, cc)
		if info := cons.CachedInfo(); info != nil {
			c.cons = append(c.cons, consumerRef{src.stream, info.Name})
		}
	}
	return nil
}

// stopAll stops the consumers and deletes them on the server in the
// background (they would expire after 30 s of inactivity anyway).
func (c *streamClient) stopAll() {
	for _, cc := range c.ccs {
		cc.Stop()
	}
	if len(c.cons) == 0 {
		return
	}
	js := c.role.assets.JS
	refs := c.cons
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, ref := range refs {
			_ = js.DeleteConsumer(ctx, ref.stream, ref.name) // best effort
		}
	}()
}

// handler renders and filters each message of source i and queues it for
// the client, waiting at most StreamSlowTimeout for room before dropping
// the client. Waiting stops the consumer from pulling more, so a client's
// memory is bounded by StreamBuffer messages plus one pull of 64.
func (c *streamClient) handler(ctx context.Context, i int) jetstream.MessageHandler {
	return func(m jetstream.Msg) {
		if ctx.Err() != nil {
			return
		}
		md, err := m.Metadata()
		if err != nil {
			return
		}
		data := c.render(i, m)
		if data == nil {
			c.skipped[i].Store(md.Sequence.Stream)
			return
		}
		sm := streamMsg{src: i, seq: md.Sequence.Stream, data: data}
		select {
		case c.out <- sm:
			return
		case <-ctx.Done():
			return
		default:
		}
		t := time.NewTimer(c.role.cfg.StreamSlowTimeout)
		defer t.Stop()
		select {
		case c.out <- sm:
		case <-ctx.Done():
		case <-t.C:
			c.cancel(errSlowClient)
		}
	}
}

// render returns the JSON data of message m of source i, or nil when the
// client's filters leave it out.
func (c *streamClient) render(i int, m jetstream.Msg) []byte {
	src := sources[i]
	name := ""
	if tok := src.token(m.Subject()); tok != "" && tok != vigil.NoService {
		n, err := vigil.NameFromToken(tok)
		if err != nil {
			return nil
		}
		name = n
	}
	p := c.p
	if (p.service != nil || p.exact != nil) && name == "" {
		return nil
	}
	if p.service != nil && !p.service.MatchString(name) {
		return nil
	}
	switch i {
	case srcEvents:
		var e vigil.Event
		if json.Unmarshal(m.Data(), &e) != nil || e.Level < p.level || !matches(p.message, e.Message) {
			return nil
		}
		e.Service = name
		e.Seq = seqOf(m)
		return marshal(&e)
	case srcAlerts:
		var a vigil.Alert
		if json.Unmarshal(m.Data(), &a) != nil || a.Level < p.level || !matches(p.message, a.Message) {
			return nil
		}
		a.Seq = seqOf(m)
		return marshal(&a)
	case srcStatus:
		if deleted(m) {
			return nil
		}
		var v vigil.Verdict
		if json.Unmarshal(m.Data(), &v) != nil {
			return nil
		}
		v.Service = name
		return marshal(&v)
	default: // deliveries: passed on as the notifier wrote them
		d := bytes.TrimSpace(m.Data())
		if !json.Valid(d) {
			return nil
		}
		return d
	}
}

func matches(re *regexp.Regexp, s string) bool { return re == nil || re.MatchString(s) }

func seqOf(m jetstream.Msg) uint64 {
	if md, err := m.Metadata(); err == nil {
		return md.Sequence.Stream
	}
	return 0
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// maxBurst is how many queued messages are written before one flush.
const maxBurst = 64

// serve writes the stream until ctx ends (client gone, dropped, or
// shutdown) or a write fails, and returns why it ended.
func (c *streamClient) serve(ctx context.Context, w http.ResponseWriter) error {
	cfg := c.role.cfg
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering (nginx)
	w.WriteHeader(http.StatusOK)
	var buf []byte
	// The first, data-less message carries the starting position as its id
	// (a client sets its last event id even when nothing is dispatched), so a client that
	// sees no message before it reconnects still resumes from here.
	buf = append(buf, "retry: 1000\nid: "...)
	buf = append(buf, resumeToken(&c.pos, c.types)...)
	buf = append(buf, "\n\n"...)
	flush := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(cfg.StreamSlowTimeout)) // not every writer has deadlines
		if _, err := w.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
		return rc.Flush()
	}
	if err := flush(); err != nil {
		return err
	}
	hb := time.NewTicker(cfg.StreamHeartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-hb.C:
			buf = c.progress(buf)
			buf = append(buf, ": heartbeat\n\n"...)
		case m := <-c.out:
			buf = c.appendMsg(buf, m)
		burst:
			for range maxBurst - 1 {
				select {
				case m := <-c.out:
					buf = c.appendMsg(buf, m)
				default:
					break burst
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// appendMsg appends one SSE message and advances the positions.
func (c *streamClient) appendMsg(buf []byte, m streamMsg) []byte {
	c.pos[m.src] = m.seq
	buf = append(buf, "event: "...)
	buf = append(buf, sources[m.src].name...)
	buf = append(buf, "\nid: "...)
	buf = append(buf, resumeToken(&c.pos, c.types)...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, m.data...) // compact JSON: one line
	return append(buf, "\n\n"...)
}

// progress appends an id-only line when messages the filters left out have
// moved a position past what the client last saw, so a reconnect does not
// scan them again. The positions of skipped messages are read before
// checking that nothing is queued: a message queued before a later skip is
// then still in c.out, and the skip is not used before it is written.
func (c *streamClient) progress(buf []byte) []byte {
	var skipped positions
	for i := range skipped {
		skipped[i] = c.skipped[i].Load()
	}
	if len(c.out) > 0 {
		return buf
	}
	moved := false
	for i, s := range skipped {
		if s > c.pos[i] {
			c.pos[i], moved = s, true
		}
	}
	if !moved {
		return buf
	}
	buf = append(buf, "id: "...)
	buf = append(buf, resumeToken(&c.pos, c.types)...)
	return append(buf, '\n', '\n')
}

// endOnShutdown ends every live stream when srv begins shutting down:
// http.Server.Shutdown waits for active requests, and a stream never ends
// by itself.
func (r *Role) endOnShutdown(srv *http.Server) {
	r.srvMu.Lock()
	defer r.srvMu.Unlock()
	if r.servers[srv] {
		return
	}
	r.servers[srv] = true
	srv.RegisterOnShutdown(r.endStreams)
}
