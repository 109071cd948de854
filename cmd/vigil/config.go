package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/notifier"
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
	Log        LogConfig      `yaml:"log"`
	NATS       NATSConfig     `yaml:"nats"`
	Streams    StreamsConfig  `yaml:"streams"`
	Ingest     IngestConfig   `yaml:"ingest"`
	Watchdog   WatchdogConfig `yaml:"watchdog"`
	Notifier   NotifierConfig `yaml:"notifier"`
	API        APIConfig      `yaml:"api"`
}

// LogConfig says what is logged and how: Level is debug, info, warn or error;
// Format is text or json.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
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
}

// IngestConfig holds the ingest role's options (ingest.Config).
type IngestConfig struct {
	DefaultGrace   time.Duration `yaml:"default_grace"`
	MaxBody        int64         `yaml:"max_body"`
	MaxBatch       int           `yaml:"max_batch"`
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	Workers        int           `yaml:"workers"`
}

// WatchdogConfig holds the watchdog role's options (watchdog.Config). An
// empty Instance means hostname-pid.
type WatchdogConfig struct {
	Instance      string        `yaml:"instance"`
	GapThreshold  time.Duration `yaml:"gap_threshold"`
	GapPolicy     string        `yaml:"gap_policy"`
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// NotifierConfig holds the notifier role's options; it has none yet.
type NotifierConfig struct{}

// APIConfig holds the API role's options (api.Config).
type APIConfig struct {
	DefaultLimit int           `yaml:"default_limit"`
	MaxLimit     int           `yaml:"max_limit"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
}

// defaultConfig returns the defaults; the role sections start from each
// role's own DefaultConfig so the two never drift apart.
func defaultConfig() Config {
	in, wd, ap := ingest.DefaultConfig(), watchdog.DefaultConfig(), api.DefaultConfig()
	return Config{
		DataDir:  "./vigil-data",
		HTTPAddr: ":8080",
		Log:      LogConfig{Level: "info", Format: "text"},
		NATS:     NATSConfig{Listen: "127.0.0.1:4222"},
		Streams: StreamsConfig{
			Replicas:          1,
			AlertsMaxAge:      90 * 24 * time.Hour,
			AlertsDedupWindow: time.Hour,
			PulseDedupWindow:  2 * time.Minute,
			LeaseTTL:          3 * time.Second,
		},
		Ingest: IngestConfig{
			DefaultGrace: in.DefaultGrace, MaxBody: in.MaxBody, MaxBatch: in.MaxBatch,
			PublishTimeout: in.PublishTimeout, Workers: in.Workers,
		},
		Watchdog: WatchdogConfig{GapThreshold: wd.GapThreshold, GapPolicy: wd.GapPolicy, SweepInterval: wd.SweepInterval},
		API:      APIConfig{DefaultLimit: ap.DefaultLimit, MaxLimit: ap.MaxLimit, ReadTimeout: ap.ReadTimeout},
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
	}
}

// conn returns how a role named name reaches the external NATS server.
func (c Config) conn(name string) bus.ConnConfig {
	n := c.NATS
	return bus.ConnConfig{
		URL: n.URL, Name: "vigil-" + name,
		CredsFile: n.Creds, NKeyFile: n.NKey,
		User: n.User, Password: n.Password, Token: n.Token,
		TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey,
	}
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
	}
}

func (c Config) ingest() ingest.Config {
	i := c.Ingest
	return ingest.Config{
		DefaultGrace: i.DefaultGrace, MaxBody: i.MaxBody, MaxBatch: i.MaxBatch,
		PublishTimeout: i.PublishTimeout, Workers: i.Workers,
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

func (c Config) notifier() notifier.Config { return notifier.DefaultConfig() }

func (c Config) api() api.Config {
	a := c.API
	return api.Config{DefaultLimit: a.DefaultLimit, MaxLimit: a.MaxLimit, ReadTimeout: a.ReadTimeout}
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
	}
	for _, r := range roles {
		var err error
		switch r {
		case "ingest":
			err = c.ingest().Validate()
		case "watchdog":
			err = c.watchdog().Validate()
		case "notifier":
			err = c.notifier().Validate()
		case "api":
			err = c.api().Validate()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	return nil
}

// LogValue shows the configuration with its secrets redacted, so logging a
// Config never leaks a password, a token or a URL's user info.
func (c Config) LogValue() slog.Value {
	n := c.NATS
	n.URL = bus.RedactURL(n.URL)
	n.Password = redact(n.Password)
	n.Token = redact(n.Token)
	c.NATS = n
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return slog.StringValue("unprintable config: " + err.Error())
	}
	return slog.StringValue(strings.TrimSpace(b.String()))
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// option is one flag as the help shows it.
type option struct {
	group, name, key, usage string
	secret                  bool
}

// envName returns the environment variable of a flag: VIGIL_ and the flag
// name in upper snake case (--nats-url → VIGIL_NATS_URL).
func envName(flagName string) string {
	return "VIGIL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// binder binds flags to Config fields and remembers, for the help, each
// flag's group and YAML key in the order they were bound.
type binder struct {
	fs    *flag.FlagSet
	group string
	opts  []option
}

func (b *binder) add(name, key, usage string) {
	b.opts = append(b.opts, option{group: b.group, name: name, key: key, usage: usage})
}

func (b *binder) str(p *string, name, key, usage string) {
	b.fs.StringVar(p, name, *p, usage)
	b.add(name, key, usage)
}

func (b *binder) secret(p *string, name, key, usage string) {
	b.str(p, name, key, usage)
	b.opts[len(b.opts)-1].secret = true
}

func (b *binder) dur(p *time.Duration, name, key, usage string) {
	b.fs.DurationVar(p, name, *p, usage)
	b.add(name, key, usage)
}

func (b *binder) int(p *int, name, key, usage string) {
	b.fs.IntVar(p, name, *p, usage)
	b.add(name, key, usage)
}

func (b *binder) int64(p *int64, name, key, usage string) {
	b.fs.Int64Var(p, name, *p, usage)
	b.add(name, key, usage)
}

func (b *binder) bool(p *bool, name, key, usage string) {
	b.fs.BoolVar(p, name, *p, usage)
	b.add(name, key, usage)
}

// bind defines the flags of command cmd (running roles) on fs, bound to the
// fields of c, which must hold the defaults.
func bind(fs *flag.FlagSet, c *Config, cmd string, roles []string) *binder {
	b := &binder{fs: fs, group: "General"}
	embedded := cmd == "all"
	b.str(&c.ConfigFile, "config", "", "YAML configuration `file`; its keys are shown as yaml below")
	if embedded {
		b.str(&c.DataDir, "data-dir", "data_dir", "`directory` of the embedded JetStream store")
	}
	b.str(&c.HTTPAddr, "http-addr", "http_addr", "HTTP listen address (`host:port`; port 0 picks a free port)")
	b.str(&c.Log.Level, "log-level", "log.level", "log level: debug, info, warn or error")
	b.str(&c.Log.Format, "log-format", "log.format", "log format: text or json")

	b.group = "NATS"
	if embedded {
		b.str(&c.NATS.URL, "nats-url", "nats.url", "NATS server `URLs`, comma separated; empty starts an embedded server")
	} else {
		b.str(&c.NATS.URL, "nats-url", "nats.url", "NATS server `URLs`, comma separated (required)")
	}
	b.str(&c.NATS.Creds, "nats-creds", "nats.creds", "NATS credentials `file` (JWT and nkey seed)")
	b.str(&c.NATS.NKey, "nats-nkey", "nats.nkey", "NATS nkey seed `file`")
	b.str(&c.NATS.User, "nats-user", "nats.user", "NATS user name")
	b.secret(&c.NATS.Password, "nats-password", "nats.password", "NATS password (secret: never logged)")
	b.secret(&c.NATS.Token, "nats-token", "nats.token", "NATS token (secret: never logged)")
	b.str(&c.NATS.TLSCA, "nats-tls-ca", "nats.tls_ca", "PEM `file` of the CA that signed the NATS server's certificate")
	b.str(&c.NATS.TLSCert, "nats-tls-cert", "nats.tls_cert", "PEM client certificate `file` for mutual TLS")
	b.str(&c.NATS.TLSKey, "nats-tls-key", "nats.tls_key", "PEM client key `file` for mutual TLS")
	if embedded {
		b.group = "Embedded NATS server (when --nats-url is empty)"
		b.str(&c.NATS.Listen, "nats-listen", "nats.listen", "client port (host:port) of the embedded server for the nats CLI and direct publishers; \"off\" disables it")
		b.str(&c.NATS.Config, "nats-config", "nats.config", "nats-server configuration `file` (accounts, TLS, clustering)")
		b.bool(&c.NATS.SyncAlways, "nats-sync-always", "nats.sync_always", "fsync every write before acknowledging it (survives power loss, slower)")
		b.int64(&c.NATS.MaxStore, "nats-max-store", "nats.max_store", "cap of the JetStream file store in `bytes`; 0 means the disk")
	}

	b.group = "Streams and buckets"
	b.int(&c.Streams.Replicas, "replicas", "streams.replicas", "replicas of every stream and bucket (1, or 3 on a cluster)")
	b.dur(&c.Streams.AlertsMaxAge, "alerts-max-age", "streams.alerts_max_age", "how long alerts are kept")
	b.dur(&c.Streams.AlertsDedupWindow, "alerts-dedup-window", "streams.alerts_dedup_window", "dedup window of the alert stream")
	b.dur(&c.Streams.PulseDedupWindow, "pulse-dedup-window", "streams.pulse_dedup_window", "how long an Idempotency-Key is remembered")
	b.dur(&c.Streams.LeaseTTL, "lease-ttl", "streams.lease_ttl", "watchdog leader lease lifetime (whole seconds)")

	for _, r := range roles {
		switch r {
		case "ingest":
			b.group = "Ingest"
			b.dur(&c.Ingest.DefaultGrace, "default-grace", "ingest.default_grace", "grace period stored with a pulse that has none")
			b.int64(&c.Ingest.MaxBody, "max-body", "ingest.max_body", "largest request body in `bytes` (HTTP and NATS)")
			b.int(&c.Ingest.MaxBatch, "max-batch", "ingest.max_batch", "most pulses in one request")
			b.dur(&c.Ingest.PublishTimeout, "publish-timeout", "ingest.publish_timeout", "how long a request waits for its JetStream acks")
			b.int(&c.Ingest.Workers, "ingest-workers", "ingest.workers", "direct-NATS intake messages handled at once")
		case "watchdog":
			b.group = "Watchdog"
			b.str(&c.Watchdog.Instance, "watchdog-instance", "watchdog.instance", "name of this replica in the lease and logs (empty: hostname-pid)")
			b.dur(&c.Watchdog.GapThreshold, "gap-threshold", "watchdog.gap_threshold", "silence of every watchdog after which vigil was not monitoring")
			b.str(&c.Watchdog.GapPolicy, "gap-policy", "watchdog.gap_policy", "deadlines missed while vigil was not monitoring: gap (one alert) or each (one down alert each)")
			b.dur(&c.Watchdog.SweepInterval, "sweep-interval", "watchdog.sweep_interval", "least time between two detection sweeps")
		case "api":
			b.group = "API"
			b.int(&c.API.DefaultLimit, "api-default-limit", "api.default_limit", "page size of a list without ?limit")
			b.int(&c.API.MaxLimit, "api-max-limit", "api.max_limit", "largest ?limit accepted")
			b.dur(&c.API.ReadTimeout, "api-read-timeout", "api.read_timeout", "bound on one request's reads from the KV buckets")
		}
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
	fs := flag.NewFlagSet("vigil "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bind(fs, &cfg, cmd, roles)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// Remember what the command line said, then rebuild from the bottom:
	// defaults, file, environment, and the command line again on top.
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
	path, ok := set["config"]
	if !ok {
		path = getenv(envName("config"))
	}
	cfg = defaultConfig()
	if path != "" {
		if err := decodeFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if err != nil || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s: %w", envName(f.Name), e)
		}
	})
	if err != nil {
		return Config{}, err
	}
	for name, v := range set {
		if err := fs.Set(name, v); err != nil {
			return Config{}, fmt.Errorf("--%s: %w", name, err)
		}
	}
	cfg.ConfigFile = path
	if err := cfg.validate(cmd, roles); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeFile reads a YAML configuration file into cfg. Unknown keys are an
// error; yaml's errors name the line ("line 3: field foo not found").
func decodeFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}
