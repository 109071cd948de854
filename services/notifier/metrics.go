package notifier

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	alerts     *prometheus.CounterVec
	jobs       *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	dead       *prometheus.CounterVec
}

// newMetrics registers the notifier's metrics on reg; dead (may be nil)
// backs the dead letter gauge.
func newMetrics(reg prometheus.Registerer, dead jetstream.Stream) (*metrics, error) {
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifier_alerts_total",
			Help: "Alerts the notifier consumed from VIGIL_ALERTS and acknowledged, by kind.",
		}, []string{"kind"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifier_jobs_total",
			Help: "Delivery jobs stored on VIGIL_DELIVERIES by the fan-out (duplicates not counted), by channel.",
		}, []string{"channel"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifier_deliveries_total",
			Help: "Delivery attempts by channel and outcome (delivered, retrying, dead, silenced, skipped-duplicate, resolved).",
		}, []string{"channel", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_notifier_delivery_seconds",
			Help:    "Seconds from an alert stored in VIGIL_ALERTS to its first notification accepted by the provider, by channel.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"channel"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifier_dead_letters_total",
			Help: "Delivery jobs moved to VIGIL_DEAD_LETTERS, by channel.",
		}, []string{"channel"}),
	}
	var last atomic.Int64
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_notifier_dead_letters",
		Help: "Dead letters waiting in VIGIL_DEAD_LETTERS (all channels).",
	}, func() float64 {
		if dead == nil {
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if info, err := dead.Info(ctx); err == nil {
			last.Store(int64(info.State.Msgs))
		}
		return float64(last.Load())
	})
	var errs []error
	for _, c := range []prometheus.Collector{m.alerts, m.jobs, m.deliveries, m.latency, m.dead, queued} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notifier metrics: %w", err)
	}
	return m, nil
}
