// Package bus owns vigil's NATS plumbing: the embedded nats-server, client
// connections, and idempotent provisioning of every stream and KV bucket of
// the bus contract (see package vigil), so roles can start in any order.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// ConnConfig says how a role reaches an external NATS server.
type ConnConfig struct {
	// URL is a comma-separated list of nats:// or tls:// server URLs.
	URL string
	// Name identifies the connection in the server's monitoring.
	Name string
	// CredsFile is a NATS credentials file (JWT + nkey seed).
	CredsFile string
	// NKeyFile is an nkey seed file.
	NKeyFile string
	// User and Password authenticate with a user name.
	User, Password string
	// Token authenticates with a server token.
	Token string
	// TLSCA, TLSCert and TLSKey are PEM files for TLS: the CA that signed the
	// server, and a client certificate and key for mutual TLS.
	TLSCA, TLSCert, TLSKey string
}

// Connect dials the NATS servers in cfg.URL and keeps reconnecting forever;
// log receives disconnects and reconnects. It fails if the first dial fails or
// a credentials file cannot be read.
func Connect(cfg ConnConfig, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey file: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", RedactURL(cfg.URL), err)
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
	var err error
	kv := func(c jetstream.KeyValueConfig) jetstream.KeyValue {
		if err != nil {
			return nil
		}
		c.Storage, c.Replicas = jetstream.FileStorage, r
		var h jetstream.KeyValue
		h, err = js.CreateOrUpdateKeyValue(ctx, c)
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
	if err != nil {
		return nil, err
	}
	// The pulse bucket's dedup window backs Idempotency-Key; KV config has no
	// field for it, so adjust the backing stream.
	if err := setDuplicates(ctx, js, "KV_"+vigil.BucketPulses, cfg.PulseDuplicates); err != nil {
		return nil, err
	}
	a.Alerts, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        vigil.StreamAlerts,
		Description: "vigil: down, recovered, gap and manual alerts",
		Subjects:    []string{vigil.AlertSubjects},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.AlertsMaxAge,
		Duplicates:  cfg.AlertsDuplicates,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("provision stream %s: %w", vigil.StreamAlerts, err)
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
