// Package api is vigil's read side over HTTP: GET /v1/services lists every
// service with its status from an in-memory view that follows KV buckets
// vigil_pulses and vigil_services, GET /v1/services/{name} reads one service
// fresh from those buckets, and gauge vigil_api_services{status} counts
// services by status at scrape time.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// ReadTimeout bounds one request's reads from the KV buckets (default 5 s).
	ReadTimeout time.Duration
}

// DefaultConfig returns the defaults: pages of 100, at most 1000, reads
// bounded by 5 s.
func DefaultConfig() Config {
	return Config{DefaultLimit: 100, MaxLimit: 1000, ReadTimeout: 5 * time.Second}
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
}

// New checks cfg and deps and registers the role's collector on
// deps.Metrics. It fails on an invalid config, missing assets, or a
// collector already registered.
func New(cfg Config, deps Deps) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if deps.Assets == nil || deps.Assets.JS == nil || deps.Assets.Pulses == nil || deps.Assets.Services == nil {
		return nil, errors.New("api: deps.Assets with JS, Pulses and Services is required")
	}
	if deps.Metrics == nil {
		return nil, errors.New("api: deps.Metrics is required")
	}
	r := &Role{cfg: cfg, assets: deps.Assets, log: deps.Log, now: deps.Now, view: newView()}
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
	if err := deps.Metrics.Register(&collector{role: r, desc: desc}); err != nil {
		return nil, fmt.Errorf("api metrics: %w", err)
	}
	return r, nil
}

// Routes mounts GET /v1/services and GET /v1/services/{name}. The list
// answers 503 {"error":"catching up"} until Run has read both buckets; the
// single service reads the buckets itself and answers at once.
func (r *Role) Routes(rt chi.Router) {
	rt.Get("/v1/services", r.listServices)
	rt.Get("/v1/services/{name}", r.getService)
}

// Run follows KV buckets vigil_pulses and vigil_services into the view,
// opens the list once both have caught up, and blocks until ctx ends; it then
// stops both consumers and returns nil. Errors come from starting a consumer.
func (r *Role) Run(ctx context.Context) error {
	js := r.assets.JS
	pulses, err := bus.Follow(ctx, js, "KV_"+vigil.BucketPulses, nil, r.applyRecord)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer pulses.Stop()
	verdicts, err := bus.Follow(ctx, js, "KV_"+vigil.BucketServices, nil, r.applyVerdict)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer verdicts.Stop()
	start := time.Now()
	for _, ch := range []<-chan struct{}{pulses.CaughtUp(), verdicts.CaughtUp()} {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
	r.ready.Store(true)
	r.log.Info("service view caught up", "took", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	return nil
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
