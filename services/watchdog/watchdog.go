// Package watchdog finds dead services. Every replica keeps a hot in-memory
// view of every service (its last pulse record and its verdict), fed by
// ordered consumers on KV buckets vigil_pulses and vigil_services, with a
// min-heap of deadlines. One replica at a time is the leader, elected with a
// lease in KV bucket vigil_leases; only the leader acts: at deadline + grace
// it stores a down alert in VIGIL_ALERTS, on the next pulse a recovered alert,
// and each flip as a compare-and-set verdict in vigil_services.
//
// Exactly one alert per outage holds across crashes, failovers and even two
// leaders at once: an outage is named by (service, sequence of the last pulse
// before the silence), which is also the alert's JetStream message id, so a
// re-decided alert is deduplicated by the stream, and verdict writes are
// compare-and-set on the key's revision. Before it judges anything the leader
// catches up on the pulse bucket, so a service that kept pulsing while no
// watchdog ran is never reported down. Deadlines that fell while vigil itself
// was not monitoring (no leader wrote its liveness mark for longer than the
// gap threshold) raise one "monitoring gap" alert, and each such service gets
// a fresh period before it is judged. docs/architecture.md has the details.
package watchdog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
)

// Gap policies.
const (
	// GapAlert raises one gap alert for deadlines that fell while vigil was
	// not monitoring and gives each such service a fresh period.
	GapAlert = "gap"
	// GapEach judges such services like any other: one down alert each.
	GapEach = "each"
)

// Config configures the watchdog role.
type Config struct {
	// Instance names this replica in the lease and in logs (default
	// hostname-pid).
	Instance string
	// GapThreshold: when the last liveness mark of any watchdog leader is
	// older than this at takeover, vigil was not monitoring, and the policy
	// GapPolicy applies (default 15 s; a failover between replicas takes
	// about the lease TTL, well below it).
	GapThreshold time.Duration
	// GapPolicy is GapAlert (default) or GapEach.
	GapPolicy string
	// SweepInterval is the least time between two detection sweeps; it
	// bounds the work per due deadline under load (default 20 ms).
	SweepInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "watchdog"
	}
	return Config{
		Instance:      host + "-" + strconv.Itoa(os.Getpid()),
		GapThreshold:  15 * time.Second,
		GapPolicy:     GapAlert,
		SweepInterval: 20 * time.Millisecond,
	}
}

// Validate reports the first invalid option.
func (c Config) Validate() error {
	switch {
	case c.Instance == "":
		return errors.New("watchdog instance name is empty")
	case c.GapThreshold <= 0:
		return fmt.Errorf("gap threshold %v must be > 0", c.GapThreshold)
	case c.GapPolicy != GapAlert && c.GapPolicy != GapEach:
		return fmt.Errorf("gap policy %q: want %q or %q", c.GapPolicy, GapAlert, GapEach)
	case c.SweepInterval < 0:
		return fmt.Errorf("sweep interval %v must be >= 0", c.SweepInterval)
	}
	return nil
}

// Deps are the role's collaborators; see bus.Deps.
type Deps = bus.Deps

// Role is a watchdog replica.
type Role struct {
	cfg Config
	a   *bus.Assets
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	t  *tracker

	kick           chan struct{}
	caughtUp       atomic.Bool
	leader         atomic.Bool
	pulseApplied   atomic.Uint64
	verdictApplied atomic.Uint64
	sweeps         uint64

	m metrics
}

type metrics struct {
	raised   *prometheus.CounterVec
	lateness prometheus.Histogram
	failures prometheus.Counter
	gaps     prometheus.Counter
	takeover prometheus.Counter
}

// New returns a watchdog replica; Run starts it.
func New(cfg Config, deps Deps) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultConfig().SweepInterval
	}
	r := &Role{cfg: cfg, a: deps.Assets, log: deps.Log, now: deps.Now, t: newTracker(), kick: make(chan struct{}, 1)}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.m = metrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerts_raised_total",
			Help: "Alerts stored by the watchdog, by kind (down, recovered, gap).",
		}, []string{"kind"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_detection_lateness_seconds",
			Help:    "Time from a service's deadline + grace to its down alert being stored, in seconds.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_watchdog_publish_failures_total",
			Help: "Alert or verdict writes that failed and will be retried.",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_watchdog_monitoring_gaps_total",
			Help: "Monitoring gaps found at leader takeover.",
		}),
		takeover: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_watchdog_leader_acquisitions_total",
			Help: "Times this replica became the leader.",
		}),
	}
	if deps.Metrics != nil {
		services := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_watchdog_tracked_services",
			Help: "Services held in this watchdog replica's view.",
		}, func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return float64(len(r.t.byToken))
		})
		leader := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_watchdog_leader",
			Help: "1 while this replica is the watchdog leader.",
		}, func() float64 {
			if r.leader.Load() {
				return 1
			}
			return 0
		})
		for _, c := range []prometheus.Collector{r.m.raised, r.m.lateness, r.m.failures, r.m.gaps, r.m.takeover, services, leader} {
			if err := deps.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("watchdog metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Routes mounts GET /v1/watchdog, this replica's state:
// {"instance", "leader" (bool), "caught_up" (bool), "tracked" (services)}.
func (r *Role) Routes(rt chi.Router) {
	rt.Get("/v1/watchdog", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		n := len(r.t.byToken)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"instance": r.cfg.Instance, "leader": r.leader.Load(), "caught_up": r.caughtUp.Load(), "tracked": n,
		})
	})
}

// Ready reports whether the replica has caught up on both buckets.
func (r *Role) Ready(context.Context) error {
	if !r.caughtUp.Load() {
		return errors.New("watchdog: catching up on pulses")
	}
	return nil
}

// IsLeader reports whether this replica currently holds the lease.
func (r *Role) IsLeader() bool { return r.leader.Load() }

// Run follows the buckets, campaigns for the lease and, while leader, judges.
// It returns nil when ctx ends, after releasing the lease so a standby takes
// over at once, or an error if the buckets cannot be followed.
func (r *Role) Run(ctx context.Context) error {
	pf, err := bus.Follow(ctx, r.a.JS, "KV_"+vigil.BucketPulses, nil, r.onPulse)
	if err != nil {
		return err
	}
	defer pf.Stop()
	vf, err := bus.Follow(ctx, r.a.JS, "KV_"+vigil.BucketServices, nil, r.onVerdict)
	if err != nil {
		return err
	}
	defer vf.Stop()
	for _, ch := range []<-chan struct{}{pf.CaughtUp(), vf.CaughtUp()} {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
	r.caughtUp.Store(true)
	r.log.Info("watchdog caught up", "tracked", r.tracked(), "instance", r.cfg.Instance)
	for {
		rev, err := r.acquire(ctx)
		if err != nil {
			return nil //nolint:nilerr // only ctx ending stops the campaign
		}
		r.lead(ctx, rev)
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (r *Role) tracked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.t.byToken)
}

// onPulse folds one message of the pulses bucket into the view.
func (r *Role) onPulse(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	defer r.pulseApplied.Store(md.Sequence.Stream)
	token := keyOf(m.Subject(), vigil.BucketPulses)
	name, err := vigil.NameFromToken(token)
	if err != nil {
		r.log.Warn("skipping pulse record with a foreign key", "subject", m.Subject())
		return
	}
	now := r.now().UnixNano()
	if op := m.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		r.mu.Lock()
		r.t.remove(token)
		r.mu.Unlock()
		return
	}
	var rec vigil.Record
	if err := json.Unmarshal(m.Data(), &rec); err != nil || rec.Validate() != nil {
		r.log.Warn("skipping malformed pulse record", "service", name, "seq", md.Sequence.Stream)
		return
	}
	r.mu.Lock()
	r.t.applyRecord(token, name, &rec, md.Sequence.Stream, now)
	due, _ := r.t.nextDue()
	r.mu.Unlock()
	if due <= now {
		r.poke()
	}
}

// onVerdict folds one message of the verdict bucket into the view.
func (r *Role) onVerdict(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	defer r.verdictApplied.Store(md.Sequence.Stream)
	if op := m.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return
	}
	token := keyOf(m.Subject(), vigil.BucketServices)
	r.mu.Lock()
	e := r.t.byToken[token]
	known := e != nil && md.Sequence.Stream <= e.vRev
	r.mu.Unlock()
	if known {
		return // the leader's own write, already applied when it was acked
	}
	name, err := vigil.NameFromToken(token)
	if err != nil {
		return
	}
	var v vigil.Verdict
	if err := json.Unmarshal(m.Data(), &v); err != nil {
		r.log.Warn("skipping malformed verdict", "service", name)
		return
	}
	r.mu.Lock()
	r.t.applyVerdict(token, name, &v, md.Sequence.Stream, r.now().UnixNano())
	r.mu.Unlock()
}

func (r *Role) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// keyOf returns the KV key of a "$KV.<bucket>.<key>" subject.
func keyOf(subject, bucket string) string {
	p := len("$KV.") + len(bucket) + 1
	if len(subject) <= p {
		return ""
	}
	return subject[p:]
}
