// Package api is vigil's read side over HTTP: GET /v1/services lists every
// service with its status from an in-memory view that follows KV buckets
// vigil_pulses and vigil_services, GET /v1/services/{name} reads one service
// fresh from those buckets, and gauge vigil_api_services{status} counts
// services by status at scrape time.
//
// GET /v1/events, GET /v1/alerts and GET /v1/services/{name}/history run
// on in-memory indexes of streams VIGIL_EVENTS and VIGIL_ALERTS (see
// logIndex) and fetch each page's items from the streams; GET /v1/stream
// carries events, alerts, status changes and deliveries live as
// Server-Sent Events, resumable with Last-Event-ID. docs/events-api.md
// describes the routes, the index and its memory cost.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
)

// Config holds the API role's options.
type Config struct {
	// DefaultLimit is the page size of a list without ?limit (default 100).
	DefaultLimit int
	// MaxLimit is the largest ?limit accepted (default 1000).
	MaxLimit int
	// ReadTimeout bounds one request's reads from the KV buckets and
	// streams (default 5 s).
	ReadTimeout time.Duration
	// EventsWindow is how far back GET /v1/events looks without ?from
	// (default 24 h).
	EventsWindow time.Duration
	// ScanBudget bounds one list query's scan of an index (default 2 s):
	// past it the page holds what was found so far and a next_cursor to go
	// on from where the scan stopped.
	ScanBudget time.Duration
	// TrimInterval is how often the indexes drop what the streams' retention
	// removed (default 1 min).
	TrimInterval time.Duration
	// MaxStreams is the most live streams (GET /v1/stream) served at once
	// (default 1000); one more is answered 503.
	MaxStreams int
	// StreamBuffer is how many messages are queued per live stream (default
	// 256).
	StreamBuffer int
	// StreamSlowTimeout is how long a live stream's client may take no
	// message, its queue full, before it is dropped; it also bounds each
	// write (default 5 s).
	StreamSlowTimeout time.Duration
	// StreamHeartbeat is the interval of the comment that keeps an idle live
	// stream open through proxies (default 15 s).
	StreamHeartbeat time.Duration
}

// DefaultConfig returns the defaults: pages of 100, at most 1000, reads
// bounded by 5 s, events from the last 24 h, scans bounded by 2 s, a trim
// every minute, up to 1000 live streams of 256 queued messages each, slow
// clients dropped after 5 s, heartbeats every 15 s.
func DefaultConfig() Config {
	return Config{
		DefaultLimit: 100, MaxLimit: 1000, ReadTimeout: 5 * time.Second,
		EventsWindow: 24 * time.Hour, ScanBudget: 2 * time.Second, TrimInterval: time.Minute,
		MaxStreams: 1000, StreamBuffer: 256, StreamSlowTimeout: 5 * time.Second, StreamHeartbeat: 15 * time.Second,
	}
}

// Validate reports the first option out of range as a *vigil.FieldError.
func (c Config) Validate() error {
	switch {
	case c.MaxLimit < 1:
		return vigil.Invalid("max_limit", "must be at least 1")
	case c.DefaultLimit < 1 || c.DefaultLimit > c.MaxLimit:
		return vigil.Invalid("default_limit", "must be between 1 and max_limit (%d)", c.MaxLimit)
	case c.ReadTimeout <= 0:
		return vigil.Invalid("read_timeout", "must be > 0")
	case c.EventsWindow <= 0:
		return vigil.Invalid("events_window", "must be > 0")
	case c.ScanBudget <= 0:
		return vigil.Invalid("scan_budget", "must be > 0")
	case c.TrimInterval <= 0:
		return vigil.Invalid("trim_interval", "must be > 0")
	case c.MaxStreams < 1:
		return vigil.Invalid("max_streams", "must be at least 1")
	case c.StreamBuffer < 1:
		return vigil.Invalid("stream_buffer", "must be at least 1")
	case c.StreamSlowTimeout <= 0:
		return vigil.Invalid("stream_slow_timeout", "must be > 0")
	case c.StreamHeartbeat <= 0:
		return vigil.Invalid("stream_heartbeat", "must be > 0")
	}
	return nil
}

// Deps are the role's collaborators; see bus.Deps.
type Deps = bus.Deps

// Role serves the read API. Its list view is filled by Run; until Run has
// caught up with both buckets, GET /v1/services answers 503.
type Role struct {
	cfg    Config
	assets *bus.Assets
	log    *slog.Logger
	now    func() time.Time
	view   *view
	ready  atomic.Bool
	events *logIndex // VIGIL_EVENTS
	alerts *logIndex // VIGIL_ALERTS

	streams    atomic.Int64    // live streams being served
	streamsCtx context.Context // ends every live stream when cancelled
	endStreams context.CancelFunc
	srvMu      sync.Mutex
	servers    map[*http.Server]bool // servers whose shutdown ends the streams
	metrics    struct {
		streamClients prometheus.Gauge
		streamDropped prometheus.Counter
	}
}

// New checks cfg and deps and registers the role's collector on
// deps.Metrics. It fails on an invalid config, missing assets, or a
// collector already registered.
func New(cfg Config, deps Deps) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if a := deps.Assets; a == nil || a.JS == nil || a.Pulses == nil || a.Services == nil || a.Events == nil || a.Alerts == nil {
		return nil, errors.New("api: deps.Assets with JS, Pulses, Services, Events and Alerts is required")
	}
	if deps.Metrics == nil {
		return nil, errors.New("api: deps.Metrics is required")
	}
	r := &Role{
		cfg: cfg, assets: deps.Assets, log: deps.Log, now: deps.Now, view: newView(),
		events: newLogIndex(), alerts: newLogIndex(), servers: map[*http.Server]bool{},
	}
	r.streamsCtx, r.endStreams = context.WithCancel(context.Background())
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "api")
	if r.now == nil {
		r.now = time.Now
	}
	desc := prometheus.NewDesc("vigil_api_services",
		"Services tracked by vigil, by status at scrape time (up, late, down, cancelled).",
		[]string{"status"}, nil)
	r.metrics.streamClients = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_api_stream_clients",
		Help: "Live streams (GET /v1/stream) being served.",
	})
	r.metrics.streamDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_api_stream_dropped_total",
		Help: "Live stream clients dropped because they did not keep up.",
	})
	for _, c := range []prometheus.Collector{&collector{role: r, desc: desc}, &indexCollector{role: r}, r.metrics.streamClients, r.metrics.streamDropped} {
		if err := deps.Metrics.Register(c); err != nil {
			return nil, fmt.Errorf("api metrics: %w", err)
		}
	}
	return r, nil
}

// Routes mounts GET /v1/services, /v1/services/{name},
// /v1/services/{name}/history, /v1/events, /v1/alerts, /v1/stream and the
// host routes. The lists answer 503 {"error":"catching up"} with
// Retry-After until Run has read their bucket or stream; the single
// service reads the buckets itself and answers at once.
func (r *Role) Routes(rt chi.Router) {
	rt.Get("/v1/services", r.listServices)
	rt.Get("/v1/services/{name}", r.getService)
	rt.Get("/v1/services/{name}/history", r.serviceHistory)
	rt.Get("/v1/events", r.listEvents)
	rt.Get("/v1/alerts", r.listAlerts)
	rt.Get("/v1/stream", r.stream)
	r.hostRoutes(rt)
}

// Run follows KV buckets vigil_pulses and vigil_services into the view and
// streams VIGIL_EVENTS and VIGIL_ALERTS into their indexes, opens each list
// once its sources have caught up, trims the indexes every TrimInterval,
// and blocks until ctx ends; it then ends the live streams, stops the
// consumers and returns nil. Errors come from starting a consumer.
func (r *Role) Run(ctx context.Context) error {
	defer r.endStreams()
	js := r.assets.JS
	start := time.Now()
	var followers []*bus.Follower
	defer func() {
		for _, f := range followers {
			f.Stop()
		}
	}()
	follow := func(stream string, fn func(jetstream.Msg)) (*bus.Follower, error) {
		f, err := bus.Follow(ctx, js, stream, nil, fn)
		if err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		followers = append(followers, f)
		return f, nil
	}
	pulses, err := follow("KV_"+vigil.BucketPulses, r.applyRecord)
	if err != nil {
		return err
	}
	verdicts, err := follow("KV_"+vigil.BucketServices, r.applyVerdict)
	if err != nil {
		return err
	}
	events, err := follow(vigil.StreamEvents, r.applyEvent)
	if err != nil {
		return err
	}
	alerts, err := follow(vigil.StreamAlerts, r.applyAlert)
	if err != nil {
		return err
	}
	open := func(what string, ready *atomic.Bool, chs ...<-chan struct{}) {
		for _, ch := range chs {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		ready.Store(true)
		r.log.Info(what+" caught up", "took", time.Since(start).Round(time.Millisecond))
	}
	go open("service view", &r.ready, pulses.CaughtUp(), verdicts.CaughtUp())
	go open("event index", &r.events.ready, events.CaughtUp())
	go open("alert index", &r.alerts.ready, alerts.CaughtUp())
	tick := time.NewTicker(r.cfg.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r.trim(ctx)
		}
	}
}

// trim drops from each index what retention removed from its stream.
func (r *Role) trim(ctx context.Context) {
	for _, t := range []struct {
		ix *logIndex
		s  jetstream.Stream
	}{{r.events, r.assets.Events}, {r.alerts, r.assets.Alerts}} {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.ReadTimeout)
		info, err := t.s.Info(cctx)
		cancel()
		if err != nil {
			r.log.Warn("index trim: stream info", "err", err)
			continue
		}
		t.ix.trim(info.State.FirstSeq)
	}
}

// applyRecord feeds one message of the vigil_pulses stream into the view.
func (r *Role) applyRecord(m jetstream.Msg) {
	name, ok := r.msgName(m, vigil.BucketPulses)
	if !ok {
		return
	}
	if deleted(m) {
		r.view.putRecord(name, nil)
		return
	}
	var rec vigil.Record
	if err := json.Unmarshal(m.Data(), &rec); err != nil {
		r.log.Warn("skipping undecodable record", "subject", m.Subject(), "err", err)
		return
	}
	rec.Service = name
	if md, err := m.Metadata(); err == nil {
		rec.Seq = md.Sequence.Stream
	}
	r.view.putRecord(name, &rec)
}

// applyVerdict feeds one message of the vigil_services stream into the view.
func (r *Role) applyVerdict(m jetstream.Msg) {
	name, ok := r.msgName(m, vigil.BucketServices)
	if !ok {
		return
	}
	if deleted(m) {
		r.view.putVerdict(name, nil)
		return
	}
	var vd vigil.Verdict
	if err := json.Unmarshal(m.Data(), &vd); err != nil {
		r.log.Warn("skipping undecodable verdict", "subject", m.Subject(), "err", err)
		return
	}
	r.view.putVerdict(name, &vd)
}

// msgName returns the service name of a KV message "$KV.<bucket>.<token>".
func (r *Role) msgName(m jetstream.Msg, bucket string) (string, bool) {
	tok, ok := strings.CutPrefix(m.Subject(), "$KV."+bucket+".")
	if !ok {
		r.log.Warn("skipping message outside the bucket", "subject", m.Subject(), "bucket", bucket)
		return "", false
	}
	name, err := vigil.NameFromToken(tok)
	if err != nil {
		r.log.Warn("skipping key that is no service token", "subject", m.Subject(), "err", err)
		return "", false
	}
	return name, true
}

// deleted reports whether m is a KV delete or purge marker.
func deleted(m jetstream.Msg) bool {
	switch m.Headers().Get("KV-Operation") {
	case "DEL", "PURGE":
		return true
	}
	return false
}

// collector reports vigil_api_services from the view when scraped. It
// reports nothing until the view has caught up, rather than partial counts.
type collector struct {
	role *Role
	desc *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if !c.role.ready.Load() {
		return
	}
	for st, n := range c.role.view.counts(c.role.now()) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(st))
	}
}

// indexCollector reports the size of the event and alert indexes when
// scraped: vigil_api_index_entries{index} and vigil_api_index_services{index}.
type indexCollector struct{ role *Role }

var (
	indexEntriesDesc = prometheus.NewDesc("vigil_api_index_entries",
		"Messages in the API's in-memory index of a stream (events, alerts).", []string{"index"}, nil)
	indexServicesDesc = prometheus.NewDesc("vigil_api_index_services",
		"Distinct services in the API's in-memory index of a stream (events, alerts).", []string{"index"}, nil)
)

func (c *indexCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- indexEntriesDesc
	ch <- indexServicesDesc
}

func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	for name, ix := range map[string]*logIndex{"events": c.role.events, "alerts": c.role.alerts} {
		n, s := ix.size()
		ch <- prometheus.MustNewConstMetric(indexEntriesDesc, prometheus.GaugeValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(indexServicesDesc, prometheus.GaugeValue, float64(s), name)
	}
}
