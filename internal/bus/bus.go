// Package bus owns vigil's NATS plumbing: the embedded nats-server, client
// connections, and idempotent provisioning of every stream and KV bucket of
// the bus contract (see package vigil), so roles can start in any order.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// ConnConfig says how a role reaches an external NATS server.
type ConnConfig struct {
	// URL is a comma-separated list of nats:// or tls:// server URLs.
	URL string
	// Name identifies the connection in the server's monitoring.
	Name string
	// Auth holds the credentials and TLS files.
	natsconn.Auth
}

// Connect dials the NATS servers in cfg.URL and keeps reconnecting forever;
// log receives disconnects and reconnects. It fails if the first dial fails or
// a credentials file cannot be read.
func Connect(cfg ConnConfig, log *slog.Logger) (*nats.Conn, error) {
	auth, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	opts := append([]nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}, auth...)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", natsconn.RedactURL(cfg.URL), err)
	}
	return nc, nil
}

// Config sizes the streams and buckets.
type Config struct {
	// Replicas is the replica count of every stream and bucket: 1 on a single
	// node, 3 on a three-node cluster. Changing it later is applied in place.
	Replicas int
	// AlertsMaxAge is how long alerts are kept (default 90 days).
	AlertsMaxAge time.Duration
	// AlertsDuplicates is the alert stream's dedup window (default 1 h): a
	// watchdog that re-decides an outage within it stores no second alert.
	AlertsDuplicates time.Duration
	// PulseDuplicates is the dedup window for Idempotency-Key retries of
	// pulses (default 2 min).
	PulseDuplicates time.Duration
	// LeaseTTL is how long a watchdog leader lease lives without renewal
	// (default 3 s, whole seconds).
	LeaseTTL time.Duration
	// EventsMaxAge and EventsMaxBytes bound stream VIGIL_EVENTS (default
	// 30 days and 8 GiB; the oldest events go first). EventsDuplicates is its
	// dedup window for Idempotency-Key retries (default 2 min).
	EventsMaxAge     time.Duration
	EventsMaxBytes   int64
	EventsDuplicates time.Duration
	// DeliveryDuplicates is the dedup window of the delivery work queue
	// (default 1 h): an alert fanned out twice yields each job once.
	DeliveryDuplicates time.Duration
	// HistoryMaxAge bounds the delivery history (VIGIL_ATTEMPTS), the dead
	// letters and the delivered marks (default 30 days).
	HistoryMaxAge time.Duration
	// ToastsMaxAge is how long a toast waits for its desktop (default 7 days).
	ToastsMaxAge time.Duration
	// HostStatsMaxAge and HostStatsMaxBytes bound the host stats history
	// (default 30 days and 4 GiB).
	HostStatsMaxAge   time.Duration
	HostStatsMaxBytes int64
	// Owner, when set, is the role whose least-privilege identity
	// provisions: Provision then creates and updates only the streams and
	// buckets that role owns (natsconn.Owned) and looks the others up,
	// waiting until their owner has created them. Empty: every asset is
	// created or updated.
	Owner string
}

func (c *Config) defaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.AlertsMaxAge == 0 {
		c.AlertsMaxAge = 90 * 24 * time.Hour
	}
	if c.AlertsDuplicates == 0 {
		c.AlertsDuplicates = time.Hour
	}
	if c.PulseDuplicates == 0 {
		c.PulseDuplicates = 2 * time.Minute
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	setDur(&c.EventsMaxAge, 30*24*time.Hour)
	setDur(&c.EventsDuplicates, 2*time.Minute)
	setDur(&c.DeliveryDuplicates, time.Hour)
	setDur(&c.HistoryMaxAge, 30*24*time.Hour)
	setDur(&c.ToastsMaxAge, 7*24*time.Hour)
	setDur(&c.HostStatsMaxAge, 30*24*time.Hour)
	if c.EventsMaxBytes == 0 {
		c.EventsMaxBytes = 8 << 30
	}
	if c.HostStatsMaxBytes == 0 {
		c.HostStatsMaxBytes = 4 << 30
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Assets are the handles of the provisioned streams and buckets.
type Assets struct {
	JS       jetstream.JetStream
	Pulses   jetstream.KeyValue
	Services jetstream.KeyValue
	Leases   jetstream.KeyValue
	Runtime  jetstream.KeyValue
	Alerts   jetstream.Stream
	Config   Config

	Events      jetstream.Stream
	Deliveries  jetstream.Stream
	DeadLetters jetstream.Stream
	Attempts    jetstream.Stream
	Toasts      jetstream.Stream
	Delivered   jetstream.KeyValue
	Silences    jetstream.KeyValue
	HostStats   jetstream.Stream
	Hosts       jetstream.KeyValue
}

// Provision creates or updates every stream and KV bucket of the bus
// contract with CreateOrUpdate calls, so any role may run it at any time and
// in any order. It waits for JetStream to answer (a fresh cluster needs a
// moment to elect its meta leader) until ctx ends. Errors name the asset.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Config) (*Assets, error) {
	cfg.defaults()
	if err := waitJetStream(ctx, js); err != nil {
		return nil, err
	}
	a := &Assets{JS: js, Config: cfg}
	r := cfg.Replicas
	owns := func(stream string) bool {
		return cfg.Owner == "" || slices.Contains(natsconn.Owned(cfg.Owner), stream)
	}
	var err error
	kv := func(c jetstream.KeyValueConfig) jetstream.KeyValue {
		if err != nil {
			return nil
		}
		c.Storage, c.Replicas = jetstream.FileStorage, r
		var h jetstream.KeyValue
		if !owns("KV_" + c.Bucket) {
			err = awaitAsset(ctx, func() (err error) {
				h, err = js.KeyValue(ctx, c.Bucket)
				return err
			})
			if err != nil {
				err = fmt.Errorf("bucket %s (created by another role): %w", c.Bucket, err)
			}
			return h
		}
		err = retryTransient(ctx, func() (err error) {
			h, err = js.CreateOrUpdateKeyValue(ctx, c)
			return err
		})
		if err != nil {
			err = fmt.Errorf("provision bucket %s: %w", c.Bucket, err)
		}
		return h
	}
	a.Pulses = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketPulses, History: 1,
		Description: "vigil: last pulse or cancel of each service, by service token",
	})
	a.Services = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketServices, History: 1,
		Description: "vigil: watchdog verdict of each service, by service token",
	})
	a.Leases = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketLeases, History: 1, TTL: cfg.LeaseTTL,
		Description: "vigil: leader leases; max age is the lease TTL",
	})
	a.Runtime = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketRuntime, History: 1,
		Description: "vigil: liveness marks of vigil's own roles",
	})
	a.Delivered = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketDelivered, History: 1, TTL: cfg.HistoryMaxAge,
		Description: "vigil: delivery jobs that reached their provider, by job id",
	})
	a.Silences = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketSilences, History: 1,
		Description: "vigil: silences, by silence id",
	})
	if err != nil {
		return nil, err
	}
	// The pulse bucket's dedup window backs Idempotency-Key; KV config has no
	// field for it, so adjust the backing stream.
	if owns("KV_" + vigil.BucketPulses) {
		if err := setDuplicates(ctx, js, "KV_"+vigil.BucketPulses, cfg.PulseDuplicates); err != nil {
			return nil, err
		}
	}
	stream := func(c jetstream.StreamConfig) jetstream.Stream {
		if err != nil {
			return nil
		}
		c.Storage, c.Replicas = jetstream.FileStorage, r
		if c.Retention == jetstream.LimitsPolicy {
			c.Discard, c.AllowDirect = jetstream.DiscardOld, true
		}
		var s jetstream.Stream
		if !owns(c.Name) {
			err = awaitAsset(ctx, func() (err error) {
				s, err = js.Stream(ctx, c.Name)
				return err
			})
			if err != nil {
				err = fmt.Errorf("stream %s (created by another role): %w", c.Name, err)
			}
			return s
		}
		err = retryTransient(ctx, func() (err error) {
			s, err = js.CreateOrUpdateStream(ctx, c)
			return err
		})
		if err != nil {
			err = fmt.Errorf("provision stream %s: %w", c.Name, err)
		}
		return s
	}
	a.Alerts = stream(jetstream.StreamConfig{
		Name:        vigil.StreamAlerts,
		Description: "vigil: down, recovered, gap and manual alerts",
		Subjects:    []string{vigil.AlertSubjects},
		MaxAge:      cfg.AlertsMaxAge,
		Duplicates:  cfg.AlertsDuplicates,
	})
	a.Events = stream(jetstream.StreamConfig{
		Name:        vigil.StreamEvents,
		Description: "vigil: events (service, level, message), by service token",
		Subjects:    []string{vigil.EventSubjects},
		MaxAge:      cfg.EventsMaxAge,
		MaxBytes:    cfg.EventsMaxBytes,
		Duplicates:  cfg.EventsDuplicates,
		Compression: jetstream.S2Compression,
	})
	a.Deliveries = stream(jetstream.StreamConfig{
		Name:        vigil.StreamDeliveries,
		Description: "vigil: delivery jobs, one per (alert, channel, target)",
		Subjects:    []string{vigil.DeliverySubjects},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      cfg.HistoryMaxAge,
		Duplicates:  cfg.DeliveryDuplicates,
	})
	a.DeadLetters = stream(jetstream.StreamConfig{
		Name:        vigil.StreamDeadLetters,
		Description: "vigil: delivery jobs that failed for good, until retried",
		Subjects:    []string{vigil.DeadLetterSubjects},
		MaxAge:      cfg.HistoryMaxAge,
		Duplicates:  cfg.DeliveryDuplicates,
	})
	a.Attempts = stream(jetstream.StreamConfig{
		Name:        vigil.StreamAttempts,
		Description: "vigil: every delivery attempt and its outcome",
		Subjects:    []string{vigil.AttemptSubjects},
		MaxAge:      cfg.HistoryMaxAge,
		Duplicates:  cfg.DeliveryDuplicates,
	})
	a.Toasts = stream(jetstream.StreamConfig{
		Name:        vigil.StreamToasts,
		Description: "vigil: alerts waiting for desktop toast targets",
		Subjects:    []string{vigil.ToastSubjects},
		MaxAge:      cfg.ToastsMaxAge,
		Duplicates:  cfg.DeliveryDuplicates,
	})
	a.HostStats = stream(jetstream.StreamConfig{
		Name:        vigil.StreamHostStats,
		Description: "vigil: host stats history, by host token",
		Subjects:    []string{vigil.HostStatsSubjects},
		MaxAge:      cfg.HostStatsMaxAge,
		MaxBytes:    cfg.HostStatsMaxBytes,
		Compression: jetstream.S2Compression,
	})
	// vigil_hosts holds the latest stats of each host without a second
	// publish: it sources VIGIL_HOST_STATS and maps each host's subject onto
	// its key, so one acknowledged publish updates history and latest.
	a.Hosts = kv(jetstream.KeyValueConfig{
		Bucket: vigil.BucketHosts, History: 1,
		Description: "vigil: latest stats of each host, by host token (sourced from " + vigil.StreamHostStats + ")",
		Sources: []*jetstream.StreamSource{{
			Name: vigil.StreamHostStats,
			SubjectTransforms: []jetstream.SubjectTransformConfig{{
				Source:      strings.TrimSuffix(vigil.HostStatsSubjects, ">") + "*",
				Destination: "$KV." + vigil.BucketHosts + ".{{wildcard(1)}}",
			}},
		}},
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func setDuplicates(ctx context.Context, js jetstream.JetStream, stream string, d time.Duration) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("provision stream %s: %w", stream, err)
	}
	c := s.CachedInfo().Config
	if c.Duplicates == d {
		return nil
	}
	c.Duplicates = d
	if _, err := js.UpdateStream(ctx, c); err != nil {
		return fmt.Errorf("provision stream %s dedup window: %w", stream, err)
	}
	return nil
}

// retryTransient runs op until it succeeds, fails for a reason other than a
// timeout or an unavailable cluster, or ctx ends. A cold cluster asked by
// many roles at once to create replicated assets answers some of them late;
// that is worth a retry, a rejected configuration is not.
func retryTransient(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// awaitAsset runs the look-up op until it succeeds, fails for a reason
// other than a missing asset or a transient error, or ctx ends.
func awaitAsset(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || !(transient(err) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not created yet: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code == 503 || api.Code == 408
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

func waitJetStream(ctx context.Context, js jetstream.JetStream) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			return fmt.Errorf("jetstream: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream did not answer: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// NewJetStream returns a JetStream context on nc tuned for vigil: a large
// async window for batch ingest and a short default timeout.
func NewJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	return jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithDefaultTimeout(10*time.Second),
	)
}

// Ready reports whether nc is connected and JetStream answers; it backs the
// /readyz endpoint of every role.
func Ready(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	if !nc.IsConnected() {
		return fmt.Errorf("nats: %w (status %s)", vigil.ErrUnavailable, nc.Status())
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w: %w", vigil.ErrUnavailable, err)
	}
	return nil
}
