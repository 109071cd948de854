package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/flagconf"
	"github.com/vigil-monitor/vigil/internal/limit"
)

// LimitsConfig holds the rate limits of the HTTP API (limit.Config; every
// limit is listed in docs/security.md). Rates are requests per second; 0
// turns a limit off, the default.
type LimitsConfig struct {
	RatePerIP      float64       `yaml:"rate_per_ip"`
	BurstPerIP     int           `yaml:"burst_per_ip"`
	RatePerToken   float64       `yaml:"rate_per_token"`
	BurstPerToken  int           `yaml:"burst_per_token"`
	TrustedProxies []string      `yaml:"trusted_proxies"`
	MaxKeys        int           `yaml:"max_keys"`
	Idle           time.Duration `yaml:"idle"`
	BodyTimeout    time.Duration `yaml:"body_timeout"`
}

func defaultLimitsConfig() LimitsConfig {
	d := limit.DefaultConfig()
	return LimitsConfig{MaxKeys: d.MaxKeys, Idle: d.Idle, BodyTimeout: d.BodyTimeout}
}

func (l LimitsConfig) limit() limit.Config {
	return limit.Config{
		PerIP: l.RatePerIP, PerIPBurst: l.BurstPerIP,
		PerToken: l.RatePerToken, PerTokenBurst: l.BurstPerToken,
		TrustedProxies: l.TrustedProxies, MaxKeys: l.MaxKeys, Idle: l.Idle,
		BodyTimeout: l.BodyTimeout,
	}
}

// validate reports the first invalid limit, naming its flag.
func (l LimitsConfig) validate() error {
	switch {
	case l.RatePerIP < 0:
		return fmt.Errorf("--rate-limit-ip %v: must be >= 0 requests per second", l.RatePerIP)
	case l.BurstPerIP < 0:
		return fmt.Errorf("--rate-limit-ip-burst %d: must be >= 0", l.BurstPerIP)
	case l.RatePerToken < 0:
		return fmt.Errorf("--rate-limit-token %v: must be >= 0 requests per second", l.RatePerToken)
	case l.BurstPerToken < 0:
		return fmt.Errorf("--rate-limit-token-burst %d: must be >= 0", l.BurstPerToken)
	case l.MaxKeys <= 0:
		return fmt.Errorf("--rate-limit-keys %d: must be > 0", l.MaxKeys)
	case l.Idle <= 0:
		return fmt.Errorf("--rate-limit-idle %v: must be > 0", l.Idle)
	case l.BodyTimeout < 0:
		return fmt.Errorf("--body-timeout %v: must be >= 0", l.BodyTimeout)
	}
	if _, err := limit.ParsePrefixes(l.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if err := l.limit().Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	return nil
}

// bindLimits binds the rate limit flags.
func bindLimits(b *flagconf.Binder, l *LimitsConfig) {
	b.Group = "Rate limits of the HTTP API (docs/security.md)"
	b.Var(floatFlag{&l.RatePerIP}, "rate-limit-ip", "limits.rate_per_ip", "requests per second one client address may make (token bucket); 0 is no limit")
	b.Int(&l.BurstPerIP, "rate-limit-ip-burst", "limits.burst_per_ip", "requests one client address may make at once; 0 means twice the rate")
	b.Var(floatFlag{&l.RatePerToken}, "rate-limit-token", "limits.rate_per_token", "requests per second one API token may make; 0 is no limit")
	b.Int(&l.BurstPerToken, "rate-limit-token-burst", "limits.burst_per_token", "requests one API token may make at once; 0 means twice the rate")
	b.Var(listFlag{&l.TrustedProxies}, "trusted-proxies", "limits.trusted_proxies",
		"`addresses or CIDR prefixes` of reverse proxies whose X-Forwarded-For names the client, comma separated")
	b.Int(&l.MaxKeys, "rate-limit-keys", "limits.max_keys", "most client addresses (and tokens) tracked at once; the least recent is forgotten")
	b.Dur(&l.Idle, "rate-limit-idle", "limits.idle", "an address or token unseen this long is forgotten (starts again with a full bucket)")
	b.Dur(&l.BodyTimeout, "body-timeout", "limits.body_timeout", "how long a client may take to send a request body (slow senders get 400); 0 is no limit")
}

// newLimiter returns the rate limiter of cfg, keyed by client address and
// by the name of the API token auth.Guard found; its refusals are counted
// on reg.
func newLimiter(cfg Config, reg prometheus.Registerer) (*limit.Limiter, error) {
	l, err := limit.New(cfg.Limits.limit(), func(r *http.Request) string { return auth.TokenName(r.Context()) }, reg, nil)
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	return l, nil
}

// floatFlag is a flag.Value of a float64.
type floatFlag struct{ p *float64 }

func (f floatFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}

func (f floatFlag) Get() any {
	if f.p == nil {
		return 0.0
	}
	return *f.p
}

func (f floatFlag) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*f.p = v
	return nil
}

// listFlag is a flag.Value of a comma-separated list; setting it replaces
// the list, and "" empties it.
type listFlag struct{ p *[]string }

func (f listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f listFlag) Get() any {
	if f.p == nil {
		return []string(nil)
	}
	return *f.p
}

func (f listFlag) Set(s string) error {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	*f.p = out
	return nil
}
