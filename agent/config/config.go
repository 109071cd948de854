// Package config is vigil-agent's configuration: one Config read from
// defaults, an optional strict YAML file (--config), VIGIL_AGENT_*
// environment variables and flags, with the precedence flags > environment
// > file > defaults. Every option has one flag (--nats-url), one
// environment variable (VIGIL_AGENT_NATS_URL) and one YAML key (nats.url);
// the threshold rules are YAML only.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/threshold"
	"github.com/vigil-monitor/vigil/internal/flagconf"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// Config is the whole agent configuration.
type Config struct {
	ConfigFile string `yaml:"-"`
	// SystemID names this host; empty reads (or creates) the id stored in
	// StateDir (see SystemID).
	SystemID string `yaml:"system_id"`
	// Interval is the time between two snapshots.
	Interval time.Duration `yaml:"interval"`
	// StateDir keeps the system id, the offline buffer, the threshold
	// states and the toast client's position.
	StateDir string `yaml:"state_dir"`
	// Transport is "nats" (default) or "http".
	Transport string `yaml:"transport"`
	// Processes sends the full process list with each snapshot.
	Processes bool `yaml:"processes"`
	// Timeout bounds each send and each check probe.
	Timeout time.Duration `yaml:"timeout"`

	Log        LogConfig         `yaml:"log"`
	NATS       NATSConfig        `yaml:"nats"`
	HTTP       HTTPConfig        `yaml:"http"`
	Pulse      PulseConfig       `yaml:"pulse"`
	Owner      vigil.Owner       `yaml:"owner"`
	Buffer     BufferConfig      `yaml:"buffer"`
	Thresholds []ThresholdConfig `yaml:"thresholds"`
	Toast      ToastConfig       `yaml:"toast"`
}

// LogConfig says what is logged and how: Level is debug, info, warn or
// error; Format is text or json.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// NATSConfig says how to reach NATS (see transport.NATSConfig). Password
// and Token are secrets: never logged.
type NATSConfig struct {
	URL      string `yaml:"url"`
	Creds    string `yaml:"creds"`
	NKey     string `yaml:"nkey"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	TLSCA    string `yaml:"tls_ca"`
	TLSCert  string `yaml:"tls_cert"`
	TLSKey   string `yaml:"tls_key"`
}

// HTTPConfig says how to reach vigil's HTTP API (see transport.HTTPConfig).
// Token is a secret: never logged.
type HTTPConfig struct {
	URL   string `yaml:"url"`
	Token string `yaml:"token"`
	TLSCA string `yaml:"tls_ca"`
}

// PulseConfig is the agent's own heartbeat: each snapshot also pulses
// service Service (default "host:<system id>") with next_in NextIn
// (default 2 × Interval) and grace Grace (0: the server's default).
type PulseConfig struct {
	Enabled bool          `yaml:"enabled"`
	Service string        `yaml:"service"`
	NextIn  time.Duration `yaml:"next_in"`
	Grace   time.Duration `yaml:"grace"`
}

// BufferConfig bounds the offline buffer: MaxBytes on disk, MaxAge of an
// item.
type BufferConfig struct {
	MaxBytes int64         `yaml:"max_bytes"`
	MaxAge   time.Duration `yaml:"max_age"`
}

// ThresholdConfig is one threshold rule in YAML: either a plain string (the
// expression) or a mapping with the expression under "when" and optional
// "clear" (hysteresis value), "level" and "name".
type ThresholdConfig struct {
	When  string   `yaml:"when"`
	Clear *float64 `yaml:"clear"`
	Level string   `yaml:"level"`
	Name  string   `yaml:"name"`
}

// UnmarshalYAML accepts a plain string as the expression.
func (t *ThresholdConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.When = n.Value
		return nil
	}
	type plain ThresholdConfig
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = ThresholdConfig(p)
	return nil
}

// ToastConfig is the desktop toast client: Name is the toast target this
// desktop shows (an owner "toast" target); MaxAge is the oldest toast shown
// when the client comes back.
type ToastConfig struct {
	Name   string        `yaml:"name"`
	MaxAge time.Duration `yaml:"max_age"`
}

// Default returns the defaults: a 60 s interval, NATS at 127.0.0.1:4222,
// the process list on, the heartbeat on, a 50 MiB / 24 h buffer, toasts up
// to 24 h old, and the state in DefaultStateDir.
func Default() Config {
	return Config{
		Interval:  60 * time.Second,
		StateDir:  DefaultStateDir(),
		Transport: "nats",
		Processes: true,
		Timeout:   10 * time.Second,
		Log:       LogConfig{Level: "info", Format: "text"},
		NATS:      NATSConfig{URL: "nats://127.0.0.1:4222"},
		HTTP:      HTTPConfig{URL: "http://127.0.0.1:8080"},
		Pulse:     PulseConfig{Enabled: true},
		Buffer:    BufferConfig{MaxBytes: 50 << 20, MaxAge: 24 * time.Hour},
		Toast:     ToastConfig{MaxAge: 24 * time.Hour},
	}
}

// DefaultStateDir is where the agent keeps its state: for root (a system
// service) /var/lib/vigil-agent on Unix, for the LocalSystem account (a
// Windows service; its USERNAME is the machine account, ending in "$")
// %ProgramData%\vigil-agent; for other users their config directory
// (~/.config/vigil-agent, ~/Library/Application Support/vigil-agent,
// %AppData%\vigil-agent).
func DefaultStateDir() string {
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" && strings.HasSuffix(os.Getenv("USERNAME"), "$") {
			return filepath.Join(pd, "vigil-agent")
		}
	} else if os.Geteuid() == 0 {
		return "/var/lib/vigil-agent"
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "vigil-agent")
	}
	return "vigil-agent-state"
}

// PulseService returns the heartbeat's service name: Pulse.Service, or
// "host:<id>".
func (c Config) PulseService(id string) string {
	if c.Pulse.Service != "" {
		return c.Pulse.Service
	}
	return "host:" + id
}

// PulseNextIn returns the heartbeat's next_in: Pulse.NextIn, or twice the
// interval.
func (c Config) PulseNextIn() time.Duration {
	if c.Pulse.NextIn > 0 {
		return c.Pulse.NextIn
	}
	return 2 * c.Interval
}

// Rules parses the threshold rules. Errors name the rule by its position
// (thresholds[2]).
func (c Config) Rules() ([]threshold.Rule, error) {
	rules := make([]threshold.Rule, 0, len(c.Thresholds))
	names := map[string]bool{}
	for i, t := range c.Thresholds {
		r, err := threshold.Parse(t.When)
		if err != nil {
			return nil, fmt.Errorf("thresholds[%d]: %w", i, err)
		}
		r.Clear = t.Clear
		if t.Level != "" {
			l, err := vigil.ParseLevel(t.Level)
			if err != nil {
				return nil, fmt.Errorf("thresholds[%d].level: %w", i, err)
			}
			r.Level = l
		}
		if t.Name != "" {
			r.Name = t.Name
		}
		if names[r.Name] {
			return nil, fmt.Errorf("thresholds[%d]: the name %q is used twice", i, r.Name)
		}
		names[r.Name] = true
		rules = append(rules, r)
	}
	return rules, nil
}

// Validate reports the first invalid option, naming its flag.
func (c Config) Validate() error {
	if _, err := ParseLogLevel(c.Log.Level); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.Log.Format)
	}
	if c.SystemID != "" {
		if err := vigil.ValidateName(c.SystemID); err != nil {
			return fmt.Errorf("--system-id: %s", strings.TrimPrefix(err.Error(), "service: "))
		}
	}
	switch {
	case c.Interval < time.Second:
		return fmt.Errorf("--interval %v: must be at least 1s", c.Interval)
	case c.StateDir == "":
		return errors.New("--state-dir: must not be empty")
	case c.Transport != "nats" && c.Transport != "http":
		return fmt.Errorf("--transport %q: want nats or http", c.Transport)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout %v: must be > 0", c.Timeout)
	case c.Transport == "nats" && c.NATS.URL == "":
		return errors.New("--nats-url: must not be empty with --transport nats")
	case c.Transport == "http" && c.HTTP.URL == "":
		return errors.New("--http-url: must not be empty with --transport http")
	case c.Pulse.NextIn < 0 || c.Pulse.NextIn > vigil.MaxNextIn:
		return fmt.Errorf("--pulse-next-in %v: must be between 0 (2 × interval) and one year", c.Pulse.NextIn)
	case c.Pulse.Grace < 0 || c.Pulse.Grace > vigil.MaxNextIn:
		return fmt.Errorf("--pulse-grace %v: must be between 0 and one year", c.Pulse.Grace)
	case c.Buffer.MaxBytes < 1<<16:
		return fmt.Errorf("--buffer-max-bytes %d: must be at least 65536 bytes", c.Buffer.MaxBytes)
	case c.Buffer.MaxAge <= 0:
		return fmt.Errorf("--buffer-max-age %v: must be > 0", c.Buffer.MaxAge)
	case c.Toast.MaxAge <= 0:
		return fmt.Errorf("--toast-max-age %v: must be > 0", c.Toast.MaxAge)
	}
	if c.Pulse.Service != "" {
		if err := vigil.ValidateName(c.Pulse.Service); err != nil {
			return fmt.Errorf("--pulse-service: %s", strings.TrimPrefix(err.Error(), "service: "))
		}
	}
	if c.Owner.Type != "" || c.Owner.Target != "" {
		o := c.Owner
		if err := o.Validate(); err != nil {
			var fe *vigil.FieldError
			if errors.As(err, &fe) {
				return fmt.Errorf("--%s: %s", strings.ReplaceAll(fe.Field, ".", "-"), fe.Msg)
			}
			return err
		}
	}
	if c.Toast.Name != "" {
		o := vigil.Owner{Type: vigil.ChannelToast, Target: c.Toast.Name}
		if err := o.Validate(); err != nil {
			return fmt.Errorf("--toast-name %q: %s", c.Toast.Name, strings.TrimPrefix(err.Error(), "owner.target: "))
		}
	}
	if _, err := c.Rules(); err != nil {
		return err
	}
	return nil
}

// ParseLogLevel reads debug, info, warn or error.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// LogValue shows the configuration with its secrets redacted: passwords,
// tokens and the user info of the URLs.
func (c Config) LogValue() slog.Value {
	c.NATS.URL = natsconn.RedactURL(c.NATS.URL)
	c.HTTP.URL = natsconn.RedactURL(c.HTTP.URL)
	c.NATS.Password = flagconf.Redact(c.NATS.Password)
	c.NATS.Token = flagconf.Redact(c.NATS.Token)
	c.HTTP.Token = flagconf.Redact(c.HTTP.Token)
	return flagconf.LogValue(c)
}

// Option is one flag as the help shows it.
type Option = flagconf.Option

// envPrefix starts every environment variable of the agent's options.
const envPrefix = "VIGIL_AGENT_"

// EnvName returns the environment variable of a flag: VIGIL_AGENT_ and the
// flag name in upper snake case (--nats-url → VIGIL_AGENT_NATS_URL).
func EnvName(flagName string) string { return flagconf.EnvName(envPrefix, flagName) }

// Bind defines every option's flag on fs, bound to the fields of c (which
// hold the defaults), and returns the binder with the options in help order.
func Bind(fs *flag.FlagSet, c *Config) *flagconf.Binder {
	b := &flagconf.Binder{FS: fs, Prefix: envPrefix, Group: "General"}
	b.Str(&c.ConfigFile, "config", "", "YAML configuration `file`; its keys are shown as yaml below")
	b.Str(&c.SystemID, "system-id", "system_id", "this host's id; empty uses the one stored in the state directory (created on first use)")
	b.Dur(&c.Interval, "interval", "interval", "time between two snapshots")
	b.Str(&c.StateDir, "state-dir", "state_dir", "`directory` of the system id, offline buffer, threshold states and toast position")
	b.Bool(&c.Processes, "processes", "processes", "send the full process list (pid, name, user) with each snapshot")
	b.Str(&c.Log.Level, "log-level", "log.level", "log level: debug, info, warn or error")
	b.Str(&c.Log.Format, "log-format", "log.format", "log format: text or json")

	b.Group = "Transport"
	b.Str(&c.Transport, "transport", "transport", "nats (direct to the bus) or http (vigil's ingest API)")
	b.Dur(&c.Timeout, "timeout", "timeout", "bound on each send and each check probe")
	b.Str(&c.NATS.URL, "nats-url", "nats.url", "NATS server `URLs`, comma separated")
	b.Str(&c.NATS.Creds, "nats-creds", "nats.creds", "NATS credentials `file` (JWT and nkey seed)")
	b.Str(&c.NATS.NKey, "nats-nkey", "nats.nkey", "NATS nkey seed `file`")
	b.Str(&c.NATS.User, "nats-user", "nats.user", "NATS user name")
	b.Str(&c.NATS.Password, "nats-password", "nats.password", "NATS password (secret: never logged)")
	b.Str(&c.NATS.Token, "nats-token", "nats.token", "NATS token (secret: never logged)")
	b.Str(&c.NATS.TLSCA, "nats-tls-ca", "nats.tls_ca", "PEM `file` of the CA that signed the NATS server's certificate")
	b.Str(&c.NATS.TLSCert, "nats-tls-cert", "nats.tls_cert", "PEM client certificate `file` for mutual TLS")
	b.Str(&c.NATS.TLSKey, "nats-tls-key", "nats.tls_key", "PEM client key `file` for mutual TLS")
	b.Str(&c.HTTP.URL, "http-url", "http.url", "base `URL` of vigil's HTTP API, for --transport http")
	b.Str(&c.HTTP.Token, "http-token", "http.token", "API token with the ingest scope, sent as Authorization: Bearer (secret: never logged)")
	b.Str(&c.HTTP.TLSCA, "http-tls-ca", "http.tls_ca", "PEM `file` of a private CA that signed the HTTPS server's certificate")

	b.Group = "Heartbeat and alerts"
	b.Bool(&c.Pulse.Enabled, "pulse", "pulse.enabled", "pulse this host's own service with every snapshot, so a dead host raises a down alert")
	b.Str(&c.Pulse.Service, "pulse-service", "pulse.service", "service name of the heartbeat (default host:<system id>)")
	b.Dur(&c.Pulse.NextIn, "pulse-next-in", "pulse.next_in", "next_in of the heartbeat (0: twice the interval)")
	b.Dur(&c.Pulse.Grace, "pulse-grace", "pulse.grace", "grace of the heartbeat (0: the server's default)")
	b.Str(&c.Owner.Type, "owner-type", "owner.type", "who is told when this host is down or crosses a threshold: pushover, mail, webhook or toast")
	b.Str(&c.Owner.Target, "owner-target", "owner.target", "the owner's key, address, URL or desktop name")

	b.Group = "Offline buffer"
	b.Int64(&c.Buffer.MaxBytes, "buffer-max-bytes", "buffer.max_bytes", "size limit of the on-disk buffer in `bytes`; the oldest items are dropped first")
	b.Dur(&c.Buffer.MaxAge, "buffer-max-age", "buffer.max_age", "items older than this are dropped instead of replayed")

	b.Group = "Desktop toasts (vigil-agent toast)"
	b.Str(&c.Toast.Name, "toast-name", "toast.name", "this desktop's toast target name ([A-Za-z0-9_-], as in owner type toast)")
	b.Dur(&c.Toast.MaxAge, "toast-max-age", "toast.max_age", "toasts older than this are not shown when the client comes back")
	return b
}

// Load parses args on b.FS (on which Bind bound c's fields, and the caller
// may have defined its own flags) with the environment getenv and the YAML
// file named by --config or VIGIL_AGENT_CONFIG, then validates. Precedence:
// flags > environment > file > defaults. It returns flag.ErrHelp for
// -h/--help, and errors naming the flag, variable or file line at fault.
// Flags the caller defined are not read from the environment.
func Load(b *flagconf.Binder, c *Config, args []string, getenv func(string) string) error {
	path, err := flagconf.Load(b, c, *c, args, getenv)
	if err != nil {
		return err
	}
	c.ConfigFile = path
	return c.Validate()
}
