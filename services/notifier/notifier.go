// Package notifier is vigil's notifier role: it consumes stream VIGIL_ALERTS
// through the durable pull consumer "notifier" and delivers every alert once.
//
// For now delivery is a structured log line per alert, acknowledged after it
// is written; the channels an Owner may name (mail, Pushover, webhook, toast),
// grouping of mass outages and retries with back-off arrive with the notifier
// issue. Several notifier replicas share the one durable consumer, so each
// alert is handled by one of them.
package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
)

// Consumer is the name of the durable consumer on stream VIGIL_ALERTS that
// every notifier replica shares.
const Consumer = "notifier"

// Config holds the notifier's options; it has none yet.
type Config struct{}

// DefaultConfig returns the notifier's default configuration.
func DefaultConfig() Config { return Config{} }

// Validate reports an invalid option; the empty Config is always valid.
func (c Config) Validate() error { return nil }

// Deps are the role's collaborators; see bus.Deps.
type Deps = bus.Deps

// Role is a running notifier.
type Role struct {
	cfg    Config
	deps   Deps
	alerts *prometheus.CounterVec
}

// New returns a notifier for cfg. It fails when cfg is invalid, a dependency
// is missing, or its metrics cannot be registered.
func New(cfg Config, deps Deps) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("notifier config: %w", err)
	}
	if deps.Assets == nil || deps.Assets.JS == nil || deps.Log == nil || deps.Metrics == nil {
		return nil, errors.New("notifier: Assets, Log and Metrics are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	r := &Role{
		cfg:  cfg,
		deps: deps,
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifier_alerts_total",
			Help: "Alerts the notifier consumed from VIGIL_ALERTS and acknowledged, by kind.",
		}, []string{"kind"}),
	}
	if err := deps.Metrics.Register(r.alerts); err != nil {
		return nil, fmt.Errorf("notifier metrics: %w", err)
	}
	return r, nil
}

// Routes mounts nothing: the notifier has no HTTP endpoints yet.
func (r *Role) Routes(chi.Router) {}

// Run creates or updates the durable consumer and handles alerts until ctx
// ends; then it stops pulling, finishes the alerts already received, and
// returns nil. It returns an error when the consumer cannot be created.
func (r *Role) Run(ctx context.Context) error {
	cons, err := r.deps.Assets.JS.CreateOrUpdateConsumer(ctx, vigil.StreamAlerts, jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "vigil notifier: every alert, delivered once",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("notifier consumer: %w", err)
	}
	cc, err := cons.Consume(r.handle,
		jetstream.PullExpiry(2*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.deps.Log.Debug("notifier consume", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("notifier consume: %w", err)
	}
	<-ctx.Done()
	// Drain hands the alerts already pulled to handle; on a broken
	// connection it would only wait for a server that is not there, and
	// whatever was pulled but not acked is redelivered anyway.
	if r.deps.Conn != nil && !r.deps.Conn.IsConnected() {
		cc.Stop()
	} else {
		cc.Drain()
	}
	<-cc.Closed()
	return nil
}

// handle logs one alert and acknowledges it. An alert that is not JSON is
// terminated: redelivering it cannot help.
func (r *Role) handle(m jetstream.Msg) {
	var a vigil.Alert
	if err := json.Unmarshal(m.Data(), &a); err != nil {
		r.deps.Log.Warn("notifier: undecodable alert dropped", "subject", m.Subject(), "err", err)
		if err := m.Term(); err != nil {
			r.deps.Log.Warn("notifier: term", "err", err)
		}
		return
	}
	attrs := []any{"kind", a.Kind, "service", a.Service, "title", a.Title, "level", a.Level.String(), "id", a.ID}
	if a.Owner != nil {
		attrs = append(attrs, "owner_type", a.Owner.Type)
	}
	if a.BatchSize > 1 {
		attrs = append(attrs, "batch", a.Batch, "batch_size", a.BatchSize)
	}
	r.deps.Log.Info("alert", attrs...)
	if err := m.Ack(); err != nil {
		r.deps.Log.Warn("notifier: ack", "id", a.ID, "err", err)
		return
	}
	r.alerts.WithLabelValues(string(a.Kind)).Inc()
}
