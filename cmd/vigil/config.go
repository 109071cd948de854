package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/flagconf"
	"github.com/vigil-monitor/vigil/internal/natsconn"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// Config is the whole configuration of the vigil server binary. Every field
// is bound to one flag (--data-dir), one environment variable (VIGIL_DATA_DIR)
// and one key of the optional YAML file (data_dir); loadConfig applies them
// with the precedence flags > environment > file > defaults.
type Config struct {
	ConfigFile string         `yaml:"-"`
	DataDir    string         `yaml:"data_dir"`
	HTTPAddr   string         `yaml:"http_addr"`
	TLSCert    string         `yaml:"tls_cert"`
	TLSKey     string         `yaml:"tls_key"`
	Insecure   bool           `yaml:"insecure"`
	Auth       AuthConfig     `yaml:"auth"`
	Limits     LimitsConfig   `yaml:"limits"`
	Log        LogConfig      `yaml:"log"`
	NATS       NATSConfig     `yaml:"nats"`
	Streams    StreamsConfig  `yaml:"streams"`
	Ingest     IngestConfig   `yaml:"ingest"`
	Watchdog   WatchdogConfig `yaml:"watchdog"`
	Notifier   NotifierConfig `yaml:"notifier"`
	API        APIConfig      `yaml:"api"`
	Legacy     LegacyConfig   `yaml:"legacy"`
}

// LogConfig says what is logged and how: Level is debug, info, warn or error;
// Format is text or json.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// AuthConfig holds the API tokens of the native HTTP API (docs/auth.md).
// Without tokens the API is open, which vigil allows only on a loopback
// --http-addr or with --insecure. ProtectMetrics makes /metrics need a
// read token too.
type AuthConfig struct {
	Tokens         []auth.Token `yaml:"tokens"`
	ProtectMetrics bool         `yaml:"protect_metrics"`
	// CSRFKey is the key of the web pages' CSRF tokens (a secret of at
	// least 32 bytes, never logged). Empty: a random key per process, so
	// several api replicas behind one address need the same CSRFKey.
	CSRFKey string `yaml:"csrf_key"`
}

// NATSConfig says how roles reach NATS and how the embedded server runs. An
// empty URL starts the embedded server (vigil all only); Listen "off" or ""
// disables its client port. Password and Token are secrets: never logged.
type NATSConfig struct {
	URL        string `yaml:"url"`
	Creds      string `yaml:"creds"`
	NKey       string `yaml:"nkey"`
	User       string `yaml:"user"`
	Password   string `yaml:"password"`
	Token      string `yaml:"token"`
	TLSCA      string `yaml:"tls_ca"`
	TLSCert    string `yaml:"tls_cert"`
	TLSKey     string `yaml:"tls_key"`
	Identities bool   `yaml:"identities"`
	Listen     string `yaml:"listen"`
	Config     string `yaml:"config"`
	SyncAlways bool   `yaml:"sync_always"`
	MaxStore   int64  `yaml:"max_store"`
}

// StreamsConfig sizes the streams and KV buckets (bus.Config).
type StreamsConfig struct {
	Replicas          int           `yaml:"replicas"`
	AlertsMaxAge      time.Duration `yaml:"alerts_max_age"`
	AlertsDedupWindow time.Duration `yaml:"alerts_dedup_window"`
	PulseDedupWindow  time.Duration `yaml:"pulse_dedup_window"`
	LeaseTTL          time.Duration `yaml:"lease_ttl"`
	EventsMaxAge      time.Duration `yaml:"events_max_age"`
	EventsMaxBytes    int64         `yaml:"events_max_bytes"`
	EventsDedupWindow time.Duration `yaml:"events_dedup_window"`
	HostStatsMaxAge   time.Duration `yaml:"host_stats_max_age"`
	HostStatsMaxBytes int64         `yaml:"host_stats_max_bytes"`
}

// IngestConfig holds the ingest role's options (ingest.Config).
type IngestConfig struct {
	DefaultGrace   time.Duration `yaml:"default_grace"`
	MaxBody        int64         `yaml:"max_body"`
	MaxBatch       int           `yaml:"max_batch"`
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	Workers        int           `yaml:"workers"`
	// MaxServicesPerToken: see ingest.Config.
	MaxServicesPerToken int `yaml:"max_services_per_token"`
}

// WatchdogConfig holds the watchdog role's options (watchdog.Config). An
// empty Instance means hostname-pid.
type WatchdogConfig struct {
	Instance      string        `yaml:"instance"`
	GapThreshold  time.Duration `yaml:"gap_threshold"`
	GapPolicy     string        `yaml:"gap_policy"`
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// APIConfig holds the API role's options (api.Config).
type APIConfig struct {
	DefaultLimit      int           `yaml:"default_limit"`
	MaxLimit          int           `yaml:"max_limit"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	EventsWindow      time.Duration `yaml:"events_window"`
	ScanBudget        time.Duration `yaml:"scan_budget"`
	MaxStreams        int           `yaml:"max_streams"`
	StreamBuffer      int           `yaml:"stream_buffer"`
	StreamSlowTimeout time.Duration `yaml:"stream_slow_timeout"`
	StreamHeartbeat   time.Duration `yaml:"stream_heartbeat"`
}

// defaultConfig returns the defaults; the role sections start from each
// role's own DefaultConfig so the two never drift apart.
func defaultConfig() Config {
	in, wd, ap := ingest.DefaultConfig(), watchdog.DefaultConfig(), api.DefaultConfig()
	return Config{
		DataDir:  "./vigil-data",
		HTTPAddr: "127.0.0.1:8080",
		Log:      LogConfig{Level: "info", Format: "text"},
		NATS:     NATSConfig{Listen: "127.0.0.1:4222"},
		Streams: StreamsConfig{
			Replicas:          1,
			AlertsMaxAge:      90 * 24 * time.Hour,
			AlertsDedupWindow: time.Hour,
			PulseDedupWindow:  2 * time.Minute,
			LeaseTTL:          3 * time.Second,
			EventsMaxAge:      30 * 24 * time.Hour,
			EventsMaxBytes:    8 << 30,
			EventsDedupWindow: 2 * time.Minute,
			HostStatsMaxAge:   30 * 24 * time.Hour,
			HostStatsMaxBytes: 4 << 30,
		},
		Ingest: IngestConfig{
			DefaultGrace: in.DefaultGrace, MaxBody: in.MaxBody, MaxBatch: in.MaxBatch,
			PublishTimeout: in.PublishTimeout, Workers: in.Workers, MaxServicesPerToken: in.MaxServicesPerToken,
		},
		Watchdog: WatchdogConfig{GapThreshold: wd.GapThreshold, GapPolicy: wd.GapPolicy, SweepInterval: wd.SweepInterval},
		Notifier: defaultNotifierConfig(),
		API: APIConfig{
			DefaultLimit: ap.DefaultLimit, MaxLimit: ap.MaxLimit, ReadTimeout: ap.ReadTimeout,
			EventsWindow: ap.EventsWindow, ScanBudget: ap.ScanBudget, MaxStreams: ap.MaxStreams,
			StreamBuffer: ap.StreamBuffer, StreamSlowTimeout: ap.StreamSlowTimeout, StreamHeartbeat: ap.StreamHeartbeat,
		},
		Legacy: defaultLegacyConfig(),
		Limits: defaultLimitsConfig(),
	}
}

// bus returns the stream and bucket sizing.
func (c Config) bus() bus.Config {
	s := c.Streams
	return bus.Config{
		Replicas:         s.Replicas,
		AlertsMaxAge:     s.AlertsMaxAge,
		AlertsDuplicates: s.AlertsDedupWindow,
		PulseDuplicates:  s.PulseDedupWindow,
		LeaseTTL:         s.LeaseTTL,
		EventsMaxAge:     s.EventsMaxAge,
		EventsMaxBytes:   s.EventsMaxBytes,
		EventsDuplicates: s.EventsDedupWindow,

		HostStatsMaxAge:   s.HostStatsMaxAge,
		HostStatsMaxBytes: s.HostStatsMaxBytes,
	}
}

// conn returns how a role named name reaches the external NATS server.
func (c Config) conn(name string) bus.ConnConfig {
	n := c.NATS
	cc := bus.ConnConfig{
		URL: n.URL, Name: "vigil-" + name,
		Auth: natsconn.Auth{
			CredsFile: n.Creds, NKeyFile: n.NKey,
			User: n.User, Password: n.Password, Token: n.Token,
			TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey,
		},
	}
	if n.Identities {
		cc.InboxPrefix = natsconn.RoleInbox(name)
	}
	return cc
}

// server returns the embedded nats-server's configuration.
func (c Config) server() bus.ServerConfig {
	listen := c.NATS.Listen
	if listen == "off" {
		listen = ""
	}
	return bus.ServerConfig{
		Name:       "vigil",
		DataDir:    c.DataDir,
		Listen:     listen,
		ConfigFile: c.NATS.Config,
		SyncAlways: c.NATS.SyncAlways,
		MaxStore:   c.NATS.MaxStore,
		Identities: c.NATS.Identities,
	}
}

func (c Config) ingest() ingest.Config {
	i := c.Ingest
	return ingest.Config{
		DefaultGrace: i.DefaultGrace, MaxBody: i.MaxBody, MaxBatch: i.MaxBatch,
		PublishTimeout: i.PublishTimeout, Workers: i.Workers, MaxServicesPerToken: i.MaxServicesPerToken,
	}
}

func (c Config) watchdog() watchdog.Config {
	w := c.Watchdog
	cfg := watchdog.Config{Instance: w.Instance, GapThreshold: w.GapThreshold, GapPolicy: w.GapPolicy, SweepInterval: w.SweepInterval}
	if cfg.Instance == "" {
		cfg.Instance = watchdog.DefaultConfig().Instance
	}
	return cfg
}

func (c Config) api() api.Config {
	a, out := c.API, api.DefaultConfig()
	out.DefaultLimit, out.MaxLimit, out.ReadTimeout = a.DefaultLimit, a.MaxLimit, a.ReadTimeout
	out.EventsWindow, out.ScanBudget, out.MaxStreams = a.EventsWindow, a.ScanBudget, a.MaxStreams
	out.StreamBuffer, out.StreamSlowTimeout, out.StreamHeartbeat = a.StreamBuffer, a.StreamSlowTimeout, a.StreamHeartbeat
	return out
}

// validate reports the first invalid option of the command cmd, naming its
// flag, then asks each role that cmd runs to validate its own section.
func (c Config) validate(cmd string, roles []string) error {
	if _, err := parseLogLevel(c.Log.Level); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.Log.Format)
	}
	if c.HTTPAddr == "" {
		return errors.New("--http-addr: must not be empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key: give both or neither")
	}
	if c.NATS.URL == "" && cmd != "all" {
		return fmt.Errorf("--nats-url: vigil %s needs an external NATS server (only vigil all embeds one)", cmd)
	}
	if c.NATS.URL == "" && c.DataDir == "" {
		return errors.New("--data-dir: must not be empty")
	}
	if c.NATS.MaxStore < 0 {
		return fmt.Errorf("--nats-max-store %d: must be >= 0 bytes", c.NATS.MaxStore)
	}
	s := c.Streams
	switch {
	case s.Replicas < 1 || s.Replicas > 5:
		return fmt.Errorf("--replicas %d: must be between 1 and 5", s.Replicas)
	case s.AlertsMaxAge <= 0:
		return fmt.Errorf("--alerts-max-age %v: must be > 0", s.AlertsMaxAge)
	case s.AlertsDedupWindow <= 0 || s.AlertsDedupWindow > s.AlertsMaxAge:
		return fmt.Errorf("--alerts-dedup-window %v: must be > 0 and at most --alerts-max-age", s.AlertsDedupWindow)
	case s.PulseDedupWindow <= 0:
		return fmt.Errorf("--pulse-dedup-window %v: must be > 0", s.PulseDedupWindow)
	case s.LeaseTTL < time.Second || s.LeaseTTL%time.Second != 0:
		return fmt.Errorf("--lease-ttl %v: must be a whole number of seconds >= 1s", s.LeaseTTL)
	case s.EventsMaxAge <= 0:
		return fmt.Errorf("--events-max-age %v: must be > 0", s.EventsMaxAge)
	case s.EventsMaxBytes <= 0:
		return fmt.Errorf("--events-max-bytes %d: must be > 0", s.EventsMaxBytes)
	case s.EventsDedupWindow <= 0 || s.EventsDedupWindow > s.EventsMaxAge:
		return fmt.Errorf("--events-dedup-window %v: must be > 0 and at most --events-max-age", s.EventsDedupWindow)
	case s.HostStatsMaxAge <= 0:
		return fmt.Errorf("--host-stats-max-age %v: must be > 0", s.HostStatsMaxAge)
	case s.HostStatsMaxBytes <= 0:
		return fmt.Errorf("--host-stats-max-bytes %d: must be > 0", s.HostStatsMaxBytes)
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.Legacy.validate(cmd); err != nil {
		return err
	}
	for _, r := range roles {
		var err error
		switch r {
		case "ingest":
			err = c.ingest().Validate()
		case "watchdog":
			err = c.watchdog().Validate()
		case "notifier":
			err = c.validateNotifier()
		case "api":
			err = c.api().Validate()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	return nil
}

// validateAuth checks the API tokens and refuses an open API (no tokens)
// on an address other than loopback unless --insecure says so.
func (c Config) validateAuth() error {
	if err := auth.ValidateTokens(c.Auth.Tokens); err != nil {
		return fmt.Errorf("auth.tokens (--auth-tokens): %w", err)
	}
	if len(c.Auth.Tokens) == 0 && !c.Insecure && !auth.Loopback(c.HTTPAddr) {
		return fmt.Errorf("--http-addr %s: refusing to serve the API without tokens beyond loopback; "+
			"create one with 'vigil token create --name NAME --scope write' and set --auth-tokens "+
			"(VIGIL_AUTH_TOKENS, yaml auth.tokens), listen on 127.0.0.1, or pass --insecure to run without auth", c.HTTPAddr)
	}
	if c.Auth.ProtectMetrics && len(c.Auth.Tokens) == 0 {
		return errors.New("--protect-metrics: needs API tokens (--auth-tokens)")
	}
	if n := len(c.Auth.CSRFKey); n > 0 && n < 32 {
		return fmt.Errorf("auth.csrf_key (--csrf-key): %d bytes, want at least 32 (for example: head -c 32 /dev/urandom | base64)", n)
	}
	return nil
}

// LogValue shows the configuration with its secrets redacted, so logging a
// Config never leaks a password, a token or a URL's user info.
func (c Config) LogValue() slog.Value {
	n := c.NATS
	n.URL = natsconn.RedactURL(n.URL)
	n.Password = flagconf.Redact(n.Password)
	n.Token = flagconf.Redact(n.Token)
	c.NATS = n
	// A hash cannot be used as a token, but it is nobody's business either.
	toks := make([]auth.Token, len(c.Auth.Tokens))
	for i, t := range c.Auth.Tokens {
		t.SHA256 = flagconf.Redact(t.SHA256)
		toks[i] = t
	}
	c.Auth.Tokens = toks
	c.Auth.CSRFKey = flagconf.Redact(c.Auth.CSRFKey)
	c.Notifier = c.Notifier.redacted()
	c.Legacy = c.Legacy.redacted()
	return flagconf.LogValue(c)
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// envPrefix starts every environment variable of the server's options.
const envPrefix = "VIGIL_"

// envName returns the environment variable of a flag: VIGIL_ and the flag
// name in upper snake case (--nats-url → VIGIL_NATS_URL).
func envName(flagName string) string { return flagconf.EnvName(envPrefix, flagName) }

// tokensFlag is a flag.Value of API tokens in the compact form of
// auth.ParseTokens; setting it replaces the list.
type tokensFlag struct{ p *[]auth.Token }

func (f tokensFlag) String() string {
	if f.p == nil {
		return ""
	}
	return auth.FormatTokens(*f.p)
}

func (f tokensFlag) Get() any {
	if f.p == nil {
		return []auth.Token(nil)
	}
	return *f.p
}

func (f tokensFlag) Set(s string) error {
	t, err := auth.ParseTokens(s)
	if err != nil {
		return err
	}
	*f.p = t
	return nil
}

// bind defines the flags of command cmd (running roles) on fs, bound to the
// fields of c, which must hold the defaults.
func bind(fs *flag.FlagSet, c *Config, cmd string, roles []string) *flagconf.Binder {
	b := &flagconf.Binder{FS: fs, Prefix: envPrefix, Group: "General"}
	embedded := cmd == "all"
	b.Str(&c.ConfigFile, "config", "", "YAML configuration `file`; its keys are shown as yaml below")
	if embedded {
		b.Str(&c.DataDir, "data-dir", "data_dir", "`directory` of the embedded JetStream store")
	}
	b.Str(&c.HTTPAddr, "http-addr", "http_addr", "HTTP listen address (`host:port`; port 0 picks a free port)")
	b.Str(&c.TLSCert, "tls-cert", "tls_cert", "PEM certificate `file` of the HTTP listener: serve HTTPS (with --tls-key)")
	b.Str(&c.TLSKey, "tls-key", "tls_key", "PEM key `file` of the HTTP listener")
	b.Str(&c.Log.Level, "log-level", "log.level", "log level: debug, info, warn or error")
	b.Str(&c.Log.Format, "log-format", "log.format", "log format: text or json")

	b.Group = "API authentication (docs/auth.md)"
	b.Var(tokensFlag{&c.Auth.Tokens}, "auth-tokens", "auth.tokens",
		"API tokens as `NAME:SHA256:SCOPE[+SCOPE]`, comma separated (from vigil token create); replaces the file's list")
	b.Bool(&c.Insecure, "insecure", "insecure", "serve the API without tokens on an address other than loopback (anyone who reaches it may read and write)")
	b.Bool(&c.Auth.ProtectMetrics, "protect-metrics", "auth.protect_metrics", "require a read token for /metrics too")
	b.Secret(&c.Auth.CSRFKey, "csrf-key", "auth.csrf_key", "key of the web pages' CSRF tokens, at least 32 bytes (secret: never logged); default a random key per process, so api replicas behind one address need the same key")
	bindLimits(b, &c.Limits)

	b.Group = "NATS"
	if embedded {
		b.Str(&c.NATS.URL, "nats-url", "nats.url", "NATS server `URLs`, comma separated; empty starts an embedded server")
	} else {
		b.Str(&c.NATS.URL, "nats-url", "nats.url", "NATS server `URLs`, comma separated (required)")
	}
	b.Str(&c.NATS.Creds, "nats-creds", "nats.creds", "NATS credentials `file` (JWT and nkey seed)")
	b.Str(&c.NATS.NKey, "nats-nkey", "nats.nkey", "NATS nkey seed `file`")
	b.Str(&c.NATS.User, "nats-user", "nats.user", "NATS user name")
	b.Secret(&c.NATS.Password, "nats-password", "nats.password", "NATS password (secret: never logged)")
	b.Secret(&c.NATS.Token, "nats-token", "nats.token", "NATS token (secret: never logged)")
	b.Str(&c.NATS.TLSCA, "nats-tls-ca", "nats.tls_ca", "PEM `file` of the CA that signed the NATS server's certificate")
	b.Str(&c.NATS.TLSCert, "nats-tls-cert", "nats.tls_cert", "PEM client certificate `file` for mutual TLS")
	b.Str(&c.NATS.TLSKey, "nats-tls-key", "nats.tls_key", "PEM client key `file` for mutual TLS")
	b.Bool(&c.NATS.Identities, "nats-identities", "nats.identities",
		"least-privilege NATS identities (docs/tls-and-identities.md): each role creates only its own streams and takes replies on _INBOX.<role>; the embedded server makes each role its own user and admits on its client port only the users of --nats-config")
	if embedded {
		b.Group = "Embedded NATS server (when --nats-url is empty)"
		b.Str(&c.NATS.Listen, "nats-listen", "nats.listen", "client port (host:port) of the embedded server for the nats CLI and direct publishers; \"off\" disables it")
		b.Str(&c.NATS.Config, "nats-config", "nats.config", "nats-server configuration `file` (accounts, TLS, clustering)")
		b.Bool(&c.NATS.SyncAlways, "nats-sync-always", "nats.sync_always", "fsync every write before acknowledging it (survives power loss, slower)")
		b.Int64(&c.NATS.MaxStore, "nats-max-store", "nats.max_store", "cap of the JetStream file store in `bytes`; 0 means the disk")
	}

	b.Group = "Streams and buckets"
	b.Int(&c.Streams.Replicas, "replicas", "streams.replicas", "replicas of every stream and bucket (1, or 3 on a cluster)")
	b.Dur(&c.Streams.AlertsMaxAge, "alerts-max-age", "streams.alerts_max_age", "how long alerts are kept")
	b.Dur(&c.Streams.AlertsDedupWindow, "alerts-dedup-window", "streams.alerts_dedup_window", "dedup window of the alert stream")
	b.Dur(&c.Streams.PulseDedupWindow, "pulse-dedup-window", "streams.pulse_dedup_window", "how long an Idempotency-Key is remembered")
	b.Dur(&c.Streams.LeaseTTL, "lease-ttl", "streams.lease_ttl", "watchdog leader lease lifetime (whole seconds)")
	b.Dur(&c.Streams.EventsMaxAge, "events-max-age", "streams.events_max_age", "how long events are kept (stream VIGIL_EVENTS)")
	b.Int64(&c.Streams.EventsMaxBytes, "events-max-bytes", "streams.events_max_bytes", "size cap of the event stream in `bytes`; the oldest events go first")
	b.Dur(&c.Streams.EventsDedupWindow, "events-dedup-window", "streams.events_dedup_window", "how long an event's Idempotency-Key is remembered")
	b.Dur(&c.Streams.HostStatsMaxAge, "host-stats-max-age", "streams.host_stats_max_age", "how long host stats history is kept (stream VIGIL_HOST_STATS)")
	b.Int64(&c.Streams.HostStatsMaxBytes, "host-stats-max-bytes", "streams.host_stats_max_bytes", "size cap of the host stats history in `bytes`; the oldest go first")

	for _, r := range roles {
		switch r {
		case "ingest":
			b.Group = "Ingest"
			b.Dur(&c.Ingest.DefaultGrace, "default-grace", "ingest.default_grace", "grace period stored with a pulse that has none")
			b.Int64(&c.Ingest.MaxBody, "max-body", "ingest.max_body", "largest request body in `bytes` (HTTP and NATS)")
			b.Int(&c.Ingest.MaxBatch, "max-batch", "ingest.max_batch", "most pulses in one request")
			b.Dur(&c.Ingest.PublishTimeout, "publish-timeout", "ingest.publish_timeout", "how long a request waits for its JetStream acks")
			b.Int(&c.Ingest.Workers, "ingest-workers", "ingest.workers", "direct-NATS intake messages handled at once")
			b.Int(&c.Ingest.MaxServicesPerToken, "max-services-per-token", "ingest.max_services_per_token",
				"most services one API token may create; a pulse for a new one past it is refused 403 (0: no limit)")
		case "watchdog":
			b.Group = "Watchdog"
			b.Str(&c.Watchdog.Instance, "watchdog-instance", "watchdog.instance", "name of this replica in the lease and logs (empty: hostname-pid)")
			b.Dur(&c.Watchdog.GapThreshold, "gap-threshold", "watchdog.gap_threshold", "silence of every watchdog after which vigil was not monitoring")
			b.Str(&c.Watchdog.GapPolicy, "gap-policy", "watchdog.gap_policy", "deadlines missed while vigil was not monitoring: gap (one alert) or each (one down alert each)")
			b.Dur(&c.Watchdog.SweepInterval, "sweep-interval", "watchdog.sweep_interval", "least time between two detection sweeps")
		case "notifier":
			bindNotifier(b, &c.Notifier)
		case "api":
			b.Group = "API"
			b.Int(&c.API.DefaultLimit, "api-default-limit", "api.default_limit", "page size of a list without ?limit")
			b.Int(&c.API.MaxLimit, "api-max-limit", "api.max_limit", "largest ?limit accepted")
			b.Dur(&c.API.ReadTimeout, "api-read-timeout", "api.read_timeout", "bound on one request's reads from the KV buckets")
			b.Dur(&c.API.EventsWindow, "api-events-window", "api.events_window", "how far back GET /v1/events looks without ?from")
			b.Dur(&c.API.ScanBudget, "api-scan-budget", "api.scan_budget", "bound on one list query's scan; past it a page ends early with a next_cursor")
			b.Int(&c.API.MaxStreams, "api-max-streams", "api.max_streams", "most live streams (GET /v1/stream) at once")
			b.Int(&c.API.StreamBuffer, "api-stream-buffer", "api.stream_buffer", "messages queued per live stream")
			b.Dur(&c.API.StreamSlowTimeout, "api-stream-slow-timeout", "api.stream_slow_timeout", "a live stream client that takes nothing for this long is dropped")
			b.Dur(&c.API.StreamHeartbeat, "api-stream-heartbeat", "api.stream_heartbeat", "interval of the heartbeat comment on an idle live stream")
		}
	}
	if embedded {
		bindLegacy(b, &c.Legacy)
	}
	return b
}

// loadConfig parses the flags args of command cmd (running roles) with the
// environment getenv and the YAML file named by --config or VIGIL_CONFIG.
// Precedence: flags > environment > file > defaults. It returns
// flag.ErrHelp for -h/--help, and errors naming the flag, variable or file
// line at fault.
func loadConfig(cmd string, roles, args []string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	b := bind(flag.NewFlagSet("vigil "+cmd, flag.ContinueOnError), &cfg, cmd, roles)
	path, err := flagconf.Load(b, &cfg, defaultConfig(), args, getenv)
	if err != nil {
		return Config{}, err
	}
	if b.FS.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", b.FS.Arg(0))
	}
	cfg.ConfigFile = path
	if err := cfg.validate(cmd, roles); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeFile reads a YAML configuration file into cfg. Unknown keys are an
// error; yaml's errors name the line ("line 3: field foo not found").
func decodeFile(path string, cfg *Config) error { return flagconf.DecodeFile(path, cfg) }
