package pushover

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// DefaultURL is the Pushover Message API endpoint
// (https://pushover.net/api#messages).
const DefaultURL = "https://api.pushover.net/1/messages.json"

// Pushover priorities (https://pushover.net/api#priority).
const (
	PriorityLowest    = -2 // no notification at all
	PriorityLow       = -1 // no sound or vibration
	PriorityNormal    = 0
	PriorityHigh      = 1 // bypasses the user's quiet hours
	PriorityEmergency = 2 // repeated every Retry until acknowledged or Expire
)

// Limits of the Message API (https://pushover.net/api#limits), in characters
// (runes), and of emergency retries (https://pushover.net/api#priority), in
// seconds.
const (
	MaxMessageLen  = 1024
	MaxTitleLen    = 250
	MaxURLLen      = 512
	MaxURLTitleLen = 100
	MinRetry       = 30
	MaxExpire      = 10800
)

// Config configures the Pushover channel. The YAML keys are those of the
// pushover section of the notifier's configuration. Token is a secret:
// String and LogValue redact it, and no error carries it.
type Config struct {
	// Token is the application's API token: 30 letters and digits
	// (required).
	Token string `yaml:"token"`
	// BaseURL is the messages endpoint (default DefaultURL). Only tests and
	// proxies change it.
	BaseURL string `yaml:"base_url"`
	// Priorities map alert levels to Pushover priorities (-2..2). Keys are
	// level names (debug, info, warning, error, critical) or numbers;
	// entries given here replace the defaults of the same level. A level
	// gets the priority of the highest key at or below it, so levels above
	// critical (5, 6, ...) share critical's. Defaults: debug -1, info -1,
	// warning 0, error 0, critical 1: down alerts (error) ring normally,
	// recoveries (info) arrive quietly, critical ones bypass quiet hours.
	// Emergency (2) is never a default, since it repeats until acknowledged.
	Priorities map[string]int `yaml:"priorities"`
	// Sound names a Pushover sound to use instead of the user's default;
	// empty leaves the user's choice (https://pushover.net/api#sounds).
	Sound string `yaml:"sound"`
	// Retry and Expire apply to emergency-priority messages: Pushover
	// repeats them every Retry (at least 30 s, default 60 s) for Expire (at
	// most 3 h, default 1 h) until the user acknowledges. Whole seconds.
	Retry  time.Duration `yaml:"retry"`
	Expire time.Duration `yaml:"expire"`
	// Timeout bounds one API request (default 10 s).
	Timeout time.Duration `yaml:"timeout"`
	// HTTPClient, when set, sends the requests (tests, proxies); the
	// default keeps at most two connections to the API, as Pushover asks,
	// and reuses them.
	HTTPClient *http.Client `yaml:"-"`
}

// DefaultConfig returns the defaults; Token must still be set.
func DefaultConfig() Config {
	return Config{
		BaseURL: DefaultURL,
		Retry:   60 * time.Second,
		Expire:  time.Hour,
		Timeout: 10 * time.Second,
	}
}

// defaultPriorities are the level → priority defaults documented on
// Config.Priorities.
var defaultPriorities = map[vigil.Level]int{
	vigil.LevelDebug:    PriorityLow,
	vigil.LevelInfo:     PriorityLow,
	vigil.LevelWarning:  PriorityNormal,
	vigil.LevelError:    PriorityNormal,
	vigil.LevelCritical: PriorityHigh,
}

// Validate reports the first invalid option as a *vigil.FieldError named
// after its YAML key. Zero BaseURL, Retry, Expire and Timeout mean the
// defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Token == "" {
		return vigil.Invalid("token", "is required")
	}
	if !IsKey(c.Token) {
		return vigil.Invalid("token", "must be 30 letters and digits (the application's API token)")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return vigil.Invalid("base_url", "must be an absolute http or https URL")
	}
	if _, err := c.priorities(); err != nil {
		return err
	}
	if strings.ContainsFunc(c.Sound, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(c.Sound) > 64 {
		return vigil.Invalid("sound", "must be a sound name of at most 64 printable characters")
	}
	switch {
	case c.Retry < MinRetry*time.Second:
		return vigil.Invalid("retry", "must be at least %ds (Pushover's minimum)", MinRetry)
	case c.Expire <= 0 || c.Expire > MaxExpire*time.Second:
		return vigil.Invalid("expire", "must be 1s..%ds (Pushover's maximum, 3h)", MaxExpire)
	case c.Timeout < 0:
		return vigil.Invalid("timeout", "must not be negative (0 means 10s)")
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BaseURL == "" {
		c.BaseURL = d.BaseURL
	}
	if c.Retry == 0 {
		c.Retry = d.Retry
	}
	if c.Expire == 0 {
		c.Expire = d.Expire
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	return c
}

// levelPriority is one entry of the level → priority table.
type levelPriority struct {
	level    vigil.Level
	priority int
}

// priorities merges Priorities onto the defaults, sorted by level.
func (c Config) priorities() ([]levelPriority, error) {
	m := make(map[vigil.Level]int, len(defaultPriorities)+len(c.Priorities))
	for l, p := range defaultPriorities {
		m[l] = p
	}
	for k, p := range c.Priorities {
		l, err := vigil.ParseLevel(k)
		if err != nil {
			return nil, vigil.Invalid("priorities", "%q is not a level name or number", k)
		}
		if p < PriorityLowest || p > PriorityEmergency {
			return nil, vigil.Invalid("priorities", "%s: priority %d is outside -2..2", k, p)
		}
		m[l] = p
	}
	out := make([]levelPriority, 0, len(m))
	for l, p := range m {
		out = append(out, levelPriority{l, p})
	}
	slices.SortFunc(out, func(a, b levelPriority) int { return int(a.level - b.level) })
	return out, nil
}

// String describes the configuration with the token redacted.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("pushover %s token=%s sound=%q", c.BaseURL, redact(c.Token), c.Sound)
}

// LogValue logs the configuration as a group with the token redacted.
func (c Config) LogValue() slog.Value {
	c = c.withDefaults()
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("token", redact(c.Token)),
		slog.String("sound", c.Sound), slog.Duration("timeout", c.Timeout))
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

// IsKey reports whether s has the shape of a Pushover application token,
// user key or group key: 30 characters of [A-Za-z0-9]
// (https://pushover.net/api#identifiers).
func IsKey(s string) bool {
	if len(s) != 30 {
		return false
	}
	for i := range len(s) {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return false
		}
	}
	return true
}
