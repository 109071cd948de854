// Package limit bounds how fast one client may call vigil's HTTP API: a
// token bucket (golang.org/x/time/rate) per client address and one per API
// token, kept in a bounded map that forgets idle keys. A request over its
// rate is answered 429 Too Many Requests with Retry-After (whole seconds)
// and an httpx.ErrorBody naming the limit; it never reaches the role.
//
// The client address is the connection's remote address, or, when that
// address is one of the configured trusted proxies, the nearest address in
// X-Forwarded-For that is not a trusted proxy (ClientIP). Without trusted
// proxies X-Forwarded-For is ignored, so a client cannot choose its key.
package limit

import (
	"container/list"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/vigil-monitor/vigil/internal/httpx"
)

// Config holds the rate limits. A rate of 0 turns that limit off (the
// default: vigil's benchmarks and a trusted network need none).
type Config struct {
	// PerIP is the sustained rate of requests one client address may make,
	// per second; 0 is no limit.
	PerIP float64
	// PerIPBurst is how many requests one client address may make at once
	// above PerIP (the bucket's size); 0 means max(1, 2×PerIP).
	PerIPBurst int
	// PerToken is the sustained rate of requests of one API token, per
	// second; 0 is no limit. Requests without a token (an open API) are
	// only limited per address.
	PerToken float64
	// PerTokenBurst is PerIPBurst for tokens.
	PerTokenBurst int
	// TrustedProxies are the addresses or CIDR prefixes of reverse proxies
	// whose X-Forwarded-For header is believed ("10.0.0.0/8", "::1").
	TrustedProxies []string
	// MaxKeys bounds how many client addresses (and, separately, tokens)
	// have a bucket at once (default 100000); past it the least recently
	// seen key is forgotten, which only gives it a full bucket again.
	MaxKeys int
	// Idle is how long an unused bucket is kept (default 10 minutes); a
	// forgotten key starts again with a full bucket.
	Idle time.Duration
	// BodyTimeout is how long a client may take to send a request body
	// (default 30 s, BodyDeadline); 0 is no limit.
	BodyTimeout time.Duration
}

// Defaults of MaxKeys and Idle.
const (
	DefaultMaxKeys = 100000
	DefaultIdle    = 10 * time.Minute
)

// DefaultConfig returns the defaults: no rate limit, 100000 keys, 10
// minutes of idleness, 30 s to send a body.
func DefaultConfig() Config {
	return Config{MaxKeys: DefaultMaxKeys, Idle: DefaultIdle, BodyTimeout: DefaultBodyTimeout}
}

// Validate reports the first option out of range: rates and bursts >= 0,
// MaxKeys and Idle > 0, every trusted proxy an address or prefix.
func (c Config) Validate() error {
	switch {
	case c.PerIP < 0 || math.IsNaN(c.PerIP) || math.IsInf(c.PerIP, 0):
		return fmt.Errorf("rate limit per ip %v: must be >= 0 requests per second", c.PerIP)
	case c.PerToken < 0 || math.IsNaN(c.PerToken) || math.IsInf(c.PerToken, 0):
		return fmt.Errorf("rate limit per token %v: must be >= 0 requests per second", c.PerToken)
	case c.PerIPBurst < 0:
		return fmt.Errorf("rate limit per ip burst %d: must be >= 0", c.PerIPBurst)
	case c.PerTokenBurst < 0:
		return fmt.Errorf("rate limit per token burst %d: must be >= 0", c.PerTokenBurst)
	case c.MaxKeys <= 0:
		return fmt.Errorf("rate limit max keys %d: must be > 0", c.MaxKeys)
	case c.Idle <= 0:
		return fmt.Errorf("rate limit idle %v: must be > 0", c.Idle)
	case c.BodyTimeout < 0:
		return fmt.Errorf("body timeout %v: must be >= 0", c.BodyTimeout)
	}
	_, err := ParsePrefixes(c.TrustedProxies)
	return err
}

// ParsePrefixes parses addresses ("10.0.0.1", "::1") and CIDR prefixes
// ("10.0.0.0/8") into prefixes; an address is a prefix of its full length.
// It fails naming the first entry that is neither.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: neither an address nor a CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientIP returns the address of the client of r: the host of
// r.RemoteAddr, unless that address is within trusted; then it walks
// X-Forwarded-For (every value, comma separated) from the right, skipping
// trusted proxies, and returns the first address that is not one. An entry
// that is not an address stops the walk at the last trusted hop, so a
// forged header can at worst name a trusted proxy. The zero Addr means
// RemoteAddr was not an address (a test's recorder, a Unix socket).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap().WithZone("")
	if !within(ip, trusted) {
		return ip
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return ip
			}
			ip = a.Unmap().WithZone("")
			if !within(ip, trusted) {
				return ip
			}
		}
	}
	return ip
}

func within(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Keyed is a set of token buckets, one per key, of one rate and burst. It
// holds at most maxKeys buckets: a key unused for idle is forgotten, and
// when the set is full the least recently used key is. Safe for concurrent
// use.
type Keyed struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration
	now   func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element // of *bucket
	order list.List                // most recently used first
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// NewKeyed returns buckets of perSecond requests per second and burst
// (0: max(1, 2×perSecond)), at most maxKeys of them, forgotten after idle;
// now is the clock (nil: time.Now).
func NewKeyed(perSecond float64, burst, maxKeys int, idle time.Duration, now func() time.Time) *Keyed {
	if burst <= 0 {
		burst = max(1, int(math.Ceil(2*perSecond)))
	}
	if now == nil {
		now = time.Now
	}
	return &Keyed{limit: rate.Limit(perSecond), burst: burst, max: max(1, maxKeys), idle: idle, now: now, keys: map[string]*list.Element{}}
}

// Allow takes one token from key's bucket. When the bucket is empty it
// takes nothing and returns false with how long until a token is there.
func (k *Keyed) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.expire(now)
	var b *bucket
	if e, ok := k.keys[key]; ok {
		k.order.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		if len(k.keys) >= k.max {
			k.remove(k.order.Back())
		}
		b = &bucket{key: key, lim: rate.NewLimiter(k.limit, k.burst)}
		k.keys[key] = k.order.PushFront(b)
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len returns how many keys have a bucket.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys)
}

// expire forgets the keys unused since now - idle, oldest first.
func (k *Keyed) expire(now time.Time) {
	for e := k.order.Back(); e != nil; e = k.order.Back() {
		if now.Sub(e.Value.(*bucket).last) < k.idle {
			return
		}
		k.remove(e)
	}
}

func (k *Keyed) remove(e *list.Element) {
	delete(k.keys, e.Value.(*bucket).key)
	k.order.Remove(e)
}

// Limiter is the HTTP side: the per-address and per-token buckets of a
// Config and the metric of what they refused.
type Limiter struct {
	ip, token  *Keyed
	cfg        Config
	trusted    []netip.Prefix
	tokenName  func(*http.Request) string
	refused    *prometheus.CounterVec
	refusedIP  prometheus.Counter
	refusedTok prometheus.Counter
}

// New returns the limiter of cfg. tokenName returns the name of the API
// token that authenticated a request ("" for none). The refusals are
// counted on reg as vigil_http_rate_limited_total{by="ip"|"token"}. It
// fails when cfg is invalid or the counter cannot be registered.
func New(cfg Config, tokenName func(*http.Request) string, reg prometheus.Registerer, now func() time.Time) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	trusted, _ := ParsePrefixes(cfg.TrustedProxies) // checked by Validate
	l := &Limiter{cfg: cfg, trusted: trusted, tokenName: tokenName}
	if cfg.PerIP > 0 {
		l.ip = NewKeyed(cfg.PerIP, cfg.PerIPBurst, cfg.MaxKeys, cfg.Idle, now)
	}
	if cfg.PerToken > 0 {
		l.token = NewKeyed(cfg.PerToken, cfg.PerTokenBurst, cfg.MaxKeys, cfg.Idle, now)
	}
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_http_rate_limited_total",
		Help: "HTTP requests refused with 429 by the rate limits, by key: ip (client address) or token (API token).",
	}, []string{"by"})
	if err := reg.Register(l.refused); err != nil {
		return nil, fmt.Errorf("rate limit metrics: %w", err)
	}
	l.refusedIP, l.refusedTok = l.refused.WithLabelValues("ip"), l.refused.WithLabelValues("token")
	return l, nil
}

// ByIP wraps next with the per-address limit (next itself when it is off).
// Put it before the token check, so guessing tokens is limited too.
func (l *Limiter) ByIP(next http.Handler) http.Handler {
	if l.ip == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := ClientIP(r, l.trusted).String()
		if ok, wait := l.ip.Allow(key); !ok {
			l.refusedIP.Inc()
			refuse(w, wait, fmt.Sprintf("rate limit of %g requests per second per client address exceeded", l.cfg.PerIP))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Body wraps next with BodyDeadline of the configured BodyTimeout (next
// itself when it is 0).
func (l *Limiter) Body(next http.Handler) http.Handler {
	return BodyDeadline(l.cfg.BodyTimeout, next)
}

// ByToken wraps next with the per-token limit (next itself when it is
// off); it goes after the token check, which names the token.
func (l *Limiter) ByToken(next http.Handler) http.Handler {
	if l.token == nil || l.tokenName == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := l.tokenName(r)
		if name == "" {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := l.token.Allow(name); !ok {
			l.refusedTok.Inc()
			refuse(w, wait, fmt.Sprintf("rate limit of %g requests per second for token %q exceeded", l.cfg.PerToken, name))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers 429 with Retry-After, wait rounded up to whole seconds
// (at least 1, RFC 9110 §10.2.3), and the error msg with the wait.
func refuse(w http.ResponseWriter, wait time.Duration, msg string) {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	httpx.WriteJSON(w, http.StatusTooManyRequests, httpx.ErrorBody{Error: fmt.Sprintf("%s; retry in %d s", msg, secs)})
}
