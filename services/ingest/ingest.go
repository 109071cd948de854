// Package ingest is vigil's intake role: it accepts pulses, cancels, manual
// alerts and events over HTTP (POST /v1/pulses, DELETE /v1/services/{name},
// POST /v1/alerts, POST /v1/events) and over core NATS (vigil.in.pulse,
// vigil.in.cancel, vigil.in.alert, vigil.in.event), validates them, and
// stores them in JetStream: pulses and cancels as a vigil.Record in KV
// bucket vigil_pulses, manual alerts in stream VIGIL_ALERTS, events in
// stream VIGIL_EVENTS. Every success is answered only after the JetStream PubAck, and
// a request with any invalid part publishes nothing.
//
// Both transports share one function per operation (acceptPulses, cancel,
// raiseAlert), so a pulse sent on NATS is validated, stored, deduplicated and
// answered exactly like the HTTP call.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
)

// Config holds the ingest role's options.
type Config struct {
	// DefaultGrace is the grace period stored with a pulse that has none.
	DefaultGrace time.Duration
	// MaxBody is the largest accepted request body, in bytes, for HTTP and
	// NATS alike (default 1 MiB).
	MaxBody int64
	// MaxBatch is the most pulses accepted in one request (default 10000).
	MaxBatch int
	// PublishTimeout bounds how long a request waits for its PubAcks, and a
	// cancel for its read-modify-write (default 10 s).
	PublishTimeout time.Duration
	// Workers is how many direct-NATS intake messages are handled at once
	// (default 512); further messages wait in the subscription's buffer.
	Workers int
	// MaxServicesPerToken is the most services one API token may own
	// (see quota); a pulse for a new service past it is refused 403.
	// 0 (the default) is no limit.
	MaxServicesPerToken int
}

// DefaultConfig returns the defaults: no default grace, 1 MiB bodies,
// batches of up to 10000 pulses, a 10 s publish timeout and 512 NATS workers.
func DefaultConfig() Config {
	return Config{
		DefaultGrace:   0,
		MaxBody:        1 << 20,
		MaxBatch:       10000,
		PublishTimeout: 10 * time.Second,
		Workers:        512,
	}
}

// Validate reports the first option out of range: DefaultGrace within
// [0, vigil.MaxNextIn], MaxBody, MaxBatch, PublishTimeout and Workers > 0,
// MaxServicesPerToken >= 0.
func (c Config) Validate() error {
	switch {
	case c.DefaultGrace < 0 || c.DefaultGrace > vigil.MaxNextIn:
		return fmt.Errorf("ingest: default grace %v must be between 0 and one year", c.DefaultGrace)
	case c.MaxBody <= 0:
		return fmt.Errorf("ingest: max body %d must be > 0 bytes", c.MaxBody)
	case c.MaxBatch <= 0:
		return fmt.Errorf("ingest: max batch %d must be > 0", c.MaxBatch)
	case c.PublishTimeout <= 0:
		return fmt.Errorf("ingest: publish timeout %v must be > 0", c.PublishTimeout)
	case c.Workers <= 0:
		return fmt.Errorf("ingest: workers %d must be > 0", c.Workers)
	case c.MaxServicesPerToken < 0:
		return fmt.Errorf("ingest: max services per token %d must be >= 0", c.MaxServicesPerToken)
	}
	return nil
}

// Deps are the role's collaborators; see bus.Deps.
type Deps = bus.Deps

// Role is the ingest role: its HTTP routes and its direct-NATS intake.
type Role struct {
	cfg     Config
	nc      *nats.Conn
	assets  *bus.Assets
	log     *slog.Logger
	now     func() time.Time
	grace   vigil.Seconds
	bufs    sync.Pool // *bytes.Buffer for HTTP bodies
	metrics metrics
	events  eventMetrics
	quota   *quota     // nil without MaxServicesPerToken
	pub     *publisher // the shared JetStream publisher of every request
}

type metrics struct {
	accepted     prometheus.Counter
	rejected     *prometheus.CounterVec
	rejectedBy   map[string]prometheus.Counter
	manualAlerts prometheus.Counter
}

// Rejection reasons of vigil_pulses_rejected_total.
const (
	reasonInvalid     = "invalid"
	reasonTooLarge    = "too_large"
	reasonMediaType   = "media_type"
	reasonUnavailable = "unavailable"
	reasonQuota       = "quota"
)

// New returns the ingest role. It fails when cfg is invalid, a dependency is
// missing, or its metrics cannot be registered on deps.Metrics.
func New(cfg Config, deps Deps) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Conn == nil:
		return nil, errors.New("ingest: deps.Conn is nil")
	case deps.Assets == nil || deps.Assets.JS == nil || deps.Assets.Pulses == nil:
		return nil, errors.New("ingest: deps.Assets is not provisioned")
	case deps.Metrics == nil:
		return nil, errors.New("ingest: deps.Metrics is nil")
	}
	r := &Role{
		cfg:    cfg,
		nc:     deps.Conn,
		assets: deps.Assets,
		log:    deps.Log,
		now:    deps.Now,
		grace:  vigil.Seconds(cfg.DefaultGrace),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "ingest")
	if r.now == nil {
		r.now = time.Now
	}
	if cfg.MaxServicesPerToken > 0 {
		r.quota = newQuota(cfg.MaxServicesPerToken)
	}
	if err := r.registerMetrics(deps.Metrics); err != nil {
		return nil, err
	}
	if err := r.registerEventMetrics(deps.Metrics); err != nil {
		return nil, err
	}
	pub, err := newPublisher(deps.Conn)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	r.pub = pub
	return r, nil
}

func (r *Role) registerMetrics(reg prometheus.Registerer) error {
	m := &r.metrics
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_pulses_accepted_total",
		Help: "Pulses acknowledged by JetStream (HTTP and NATS intake, duplicates included).",
	})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_pulses_rejected_total",
		Help: "Pulse requests rejected, by reason (invalid, too_large, media_type, unavailable, quota).",
	}, []string{"reason"})
	m.manualAlerts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_manual_alerts_total",
		Help: "Manual alerts stored in VIGIL_ALERTS (duplicates excluded).",
	})
	m.rejectedBy = make(map[string]prometheus.Counter, 4)
	for _, reason := range []string{reasonInvalid, reasonTooLarge, reasonMediaType, reasonUnavailable, reasonQuota} {
		m.rejectedBy[reason] = m.rejected.WithLabelValues(reason)
	}
	for _, c := range []prometheus.Collector{m.accepted, m.rejected, m.manualAlerts} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	return nil
}

// Routes mounts POST /v1/pulses, DELETE /v1/services/{name}, POST
// /v1/alerts and POST /v1/events on rt.
func (r *Role) Routes(rt chi.Router) {
	rt.Post("/v1/pulses", r.handlePulses)
	rt.Delete("/v1/services/{name}", r.handleCancel)
	rt.Post("/v1/alerts", r.handleAlert)
	rt.Post("/v1/hosts/{id}/stats", r.handleHostStats)
	rt.Post("/v1/events", r.handleEvents)
}

// Run serves the direct-NATS intake (queue group vigil.IngestQueue on
// vigil.in.pulse, vigil.in.cancel, vigil.in.alert and vigil.in.event) until ctx ends, then
// drains the subscriptions, waits for the messages in flight to be answered,
// and returns nil. It fails if a subscription cannot be made.
func (r *Role) Run(ctx context.Context) error {
	if r.quota == nil {
		return r.serveNATS(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan error, 1)
	go func() {
		err := r.quota.follow(ctx, r.assets.JS)
		cancel() // a failed follow stops the role
		followed <- err
	}()
	err := r.serveNATS(ctx)
	cancel()
	return errors.Join(err, <-followed)
}
