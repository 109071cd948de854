package limit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/limit"
)

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Unix(1795000000, 0)} }

func TestKeyedAllow(t *testing.T) {
	c := newClock()
	k := limit.NewKeyed(1, 2, 10, time.Minute, c.now)
	for i := range 2 {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatalf("Allow #%d = false, want true within the burst of 2", i+1)
		}
	}
	ok, wait := k.Allow("a")
	if ok || wait != time.Second {
		t.Fatalf("Allow #3 = %v, %v; want false, 1s", ok, wait)
	}
	if ok, _ := k.Allow("b"); !ok {
		t.Fatal(`Allow("b") = false: another key has its own bucket`)
	}
	c.add(time.Second)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("Allow after 1 s = false, want true (one token refilled)")
	}
	if ok, _ := k.Allow("a"); ok {
		t.Fatal("Allow right after = true, want false (a refused request must not consume)")
	}
}

func TestKeyedBoundedAndIdle(t *testing.T) {
	c := newClock()
	k := limit.NewKeyed(0.01, 1, 3, time.Minute, c.now)
	for _, key := range []string{"a", "b", "c", "d", "e"} {
		k.Allow(key)
		c.add(time.Second)
	}
	if got := k.Len(); got != 3 {
		t.Fatalf("Len() = %d after 5 keys, want the cap 3", got)
	}
	// "a" was the least recently used: forgotten, so its bucket is full.
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal(`Allow("a") = false, want true: an evicted key starts with a full bucket`)
	}
	if ok, _ := k.Allow("e"); ok {
		t.Fatal(`Allow("e") = true, want false: a recent key keeps its empty bucket`)
	}
	c.add(2 * time.Minute)
	k.Allow("z")
	if got := k.Len(); got != 1 {
		t.Fatalf("Len() = %d after every other key was idle 2 min, want 1", got)
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := limit.ParsePrefixes([]string{"10.0.0.0/8", "::1", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted peer's header ignored", "203.0.113.5:4000", []string{"1.1.1.1"}, "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:4000", []string{"198.51.100.9"}, "198.51.100.9"},
		{"chain: nearest untrusted hop", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.9", "10.9.9.9"}, "198.51.100.9"},
		{"garbage stops at the last trusted hop", "10.1.2.3:4000", []string{"198.51.100.9, nonsense"}, "10.1.2.3"},
		{"all trusted", "10.1.2.3:4000", []string{"10.4.4.4"}, "10.4.4.4"},
		{"trusted, no header", "192.0.2.7:1", nil, "192.0.2.7"},
		{"ipv6 loopback proxy", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"v4-mapped", "[::ffff:203.0.113.5]:80", nil, "203.0.113.5"},
		{"not an address", "pipe", nil, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := limit.ClientIP(r, trusted).String(); got != tc.want {
				t.Errorf("ClientIP(%s, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
	if _, err := limit.ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error(`ParsePrefixes("10.0.0.0/33") = nil error, want one`)
	}
}

func TestValidate(t *testing.T) {
	ok := limit.DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*limit.Config)
		want string
	}{
		{"per ip", func(c *limit.Config) { c.PerIP = -1 }, "per ip"},
		{"per token", func(c *limit.Config) { c.PerToken = -1 }, "per token"},
		{"burst", func(c *limit.Config) { c.PerIPBurst = -1 }, "burst"},
		{"max keys", func(c *limit.Config) { c.MaxKeys = 0 }, "max keys"},
		{"idle", func(c *limit.Config) { c.Idle = 0 }, "idle"},
		{"proxy", func(c *limit.Config) { c.TrustedProxies = []string{"gateway"} }, `"gateway"`},
	} {
		c := limit.DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

// tokenHeader stands for the auth guard: the token's name is a header.
func tokenHeader(r *http.Request) string { return r.Header.Get("X-Token") }

func serve(h http.Handler, remote, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/v1/pulses", nil)
	r.RemoteAddr = remote
	if token != "" {
		r.Header.Set("X-Token", token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLimiter429(t *testing.T) {
	c := newClock()
	reg := prometheus.NewRegistry()
	cfg := limit.DefaultConfig()
	cfg.PerIP, cfg.PerIPBurst = 0.5, 1
	cfg.PerToken, cfg.PerTokenBurst = 10, 2
	l, err := limit.New(cfg, tokenHeader, reg, c.now)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	h := l.ByIP(l.ByToken(ok))

	if w := serve(h, "203.0.113.5:1", ""); w.Code != http.StatusAccepted {
		t.Fatalf("first request = %d, want 202", w.Code)
	}
	w := serve(h, "203.0.113.5:2", "")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request from the address = %d, want 429", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (one token per 2 s)", got)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, "0.5 requests per second per client address") {
		t.Errorf("body = %q (%v), want an error naming the limit", w.Body, err)
	}

	// One token from three addresses: the token's bucket of 2 runs out.
	for i, remote := range []string{"198.51.100.1:1", "198.51.100.2:1", "198.51.100.3:1"} {
		want := http.StatusAccepted
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if w := serve(h, remote, "ci"); w.Code != want {
			t.Fatalf("token request %d = %d, want %d", i+1, w.Code, want)
		}
	}
	if w := serve(h, "198.51.100.4:1", "other"); w.Code != http.StatusAccepted {
		t.Fatalf("another token = %d, want 202", w.Code)
	}
	if got := refused(t, reg, "ip"); got != 1 {
		t.Errorf(`refused{by="ip"} = %v, want 1`, got)
	}
	if got := refused(t, reg, "token"); got != 1 {
		t.Errorf(`refused{by="token"} = %v, want 1`, got)
	}
}

func TestLimiterOffIsTransparent(t *testing.T) {
	l, err := limit.New(limit.DefaultConfig(), tokenHeader, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if h := l.ByIP(next); h == nil {
		t.Fatal("ByIP = nil")
	}
	for range 1000 {
		if w := serve(l.ByIP(l.ByToken(next)), "203.0.113.5:1", "ci"); w.Code != http.StatusOK {
			t.Fatalf("with no limits = %d, want 200", w.Code)
		}
	}
}

// TestBehindGateway runs the limiter behind a reverse proxy built as
// vigil-gateway builds it (httputil.ReverseProxy, Rewrite, SetXForwarded):
// a client's own X-Forwarded-For is dropped by the proxy, so it cannot
// pick its bucket, and the address the limiter keys on is the one the
// proxy saw.
func TestBehindGateway(t *testing.T) {
	cfg := limit.DefaultConfig()
	cfg.PerIP, cfg.PerIPBurst = 0.001, 1
	cfg.TrustedProxies = []string{"127.0.0.1", "::1"}
	l, err := limit.New(cfg, nil, prometheus.NewRegistry(), newClock().now)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(l.ByIP(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, limit.ClientIP(r, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}).String())
	})))
	t.Cleanup(backend.Close)
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}})
	t.Cleanup(gw.Close)

	codes := make([]int, 0, 2)
	for _, forged := range []string{"6.6.6.6", "7.7.7.7"} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, gw.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", forged)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusTooManyRequests {
		t.Fatalf("two requests with different forged X-Forwarded-For = %v, want [200 429]: one client, one bucket", codes)
	}
	if len(seen) != 1 || seen[0] != "127.0.0.1" {
		t.Fatalf("client address behind the gateway = %v, want [127.0.0.1]", seen)
	}
}

// refused returns vigil_http_rate_limited_total{by=by} from reg.
func refused(t *testing.T, reg *prometheus.Registry, by string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_http_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "by" && lp.GetValue() == by {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no vigil_http_rate_limited_total{by=%q}", by)
	return 0
}
