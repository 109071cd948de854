package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRateLimits runs vigil all with tokens and both rate limits: the
// second request from one address within the burst is refused 429 with
// Retry-After and a JSON error naming the limit, and so is a token's; the
// health endpoints are never limited.
func TestRateLimits(t *testing.T) {
	tokens, secrets := testTokens(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Auth.Tokens = tokens
	cfg.Limits.RatePerIP, cfg.Limits.BurstPerIP = 0.001, 3
	cfg.Limits.RatePerToken, cfg.Limits.BurstPerToken = 0.001, 1
	a := startTest(t, cfg, allRoles())
	base := "http://" + a.HTTPAddr()

	// Pulses, not reads: a read may answer 503 while the api role catches up.
	pulse := `{"service":"limited","next_in":60}`
	if got := call(t, http.MethodPost, base+"/v1/pulses", secrets["sender"], pulse); got.code != http.StatusAccepted {
		t.Fatalf("first pulse = %d %s, want 202", got.code, got.body)
	}
	got := call(t, http.MethodPost, base+"/v1/pulses", secrets["sender"], pulse)
	if got.code != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" {
		t.Fatalf("second pulse with the token = %d (Retry-After %q), want 429 with Retry-After", got.code, got.header.Get("Retry-After"))
	}
	var body struct{ Error string }
	if err := json.Unmarshal([]byte(got.body), &body); err != nil || !strings.Contains(body.Error, `token "sender"`) {
		t.Fatalf("429 body = %s, want a JSON error naming the token's limit", got.body)
	}
	// The address has one request left in its burst of 3; a bad token spends it.
	if got := call(t, http.MethodGet, base+"/v1/services", "not-a-token", ""); got.code != http.StatusUnauthorized {
		t.Fatalf("bad token = %d, want 401", got.code)
	}
	got = call(t, http.MethodGet, base+"/v1/services", secrets["admin"], "")
	if got.code != http.StatusTooManyRequests || !strings.Contains(got.body, "per client address") {
		t.Fatalf("fourth request from the address = %d %s, want 429 naming the address limit", got.code, got.body)
	}
	for range 5 {
		if got := call(t, http.MethodGet, base+"/healthz", "", ""); got.code != http.StatusOK {
			t.Fatalf("/healthz = %d, want 200: health checks are not rate limited", got.code)
		}
	}
}

func TestLimitsConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate-limit-ip", "-1"}, "--rate-limit-ip"},
		{[]string{"--rate-limit-ip", "fast"}, "rate-limit-ip"},
		{[]string{"--rate-limit-token-burst", "-2"}, "--rate-limit-token-burst"},
		{[]string{"--trusted-proxies", "10.0.0.0/8,gateway"}, `"gateway"`},
		{[]string{"--rate-limit-keys", "0"}, "--rate-limit-keys"},
	} {
		_, err := loadConfig("all", allRoles(), tc.args, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadConfig(%q) = %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	cfg, err := loadConfig("all", allRoles(), []string{"--trusted-proxies", "10.0.0.0/8, ::1", "--rate-limit-ip", "20"},
		env(map[string]string{"VIGIL_RATE_LIMIT_TOKEN": "0.5"}))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Limits
	if len(l.TrustedProxies) != 2 || l.RatePerIP != 20 || l.RatePerToken != 0.5 {
		t.Fatalf("limits = %+v, want 2 proxies, 20/s per address, 0.5/s per token", l)
	}
}

func TestMaxServicesPerTokenOption(t *testing.T) {
	cfg, err := loadConfig("ingest", []string{"ingest"}, []string{"--nats-url", "nats://127.0.0.1:1", "--max-services-per-token", "5"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ingest().MaxServicesPerToken; got != 5 {
		t.Fatalf("ingest().MaxServicesPerToken = %d, want 5", got)
	}
	_, err = loadConfig("ingest", []string{"ingest"}, []string{"--nats-url", "nats://127.0.0.1:1", "--max-services-per-token", "-1"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "max services per token") {
		t.Fatalf("--max-services-per-token -1: %v, want an error", err)
	}
}

// The per-address limit covers the legacy listeners: guesses of the shared
// watchTower password are refused 429 once the address's burst is spent.
func TestRateLimitCoversLegacy(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Legacy.Addr = "127.0.0.1:0"
	cfg.Legacy.WatchTower.Password = "change me"
	cfg.Legacy.Traylert.Key = "0123456789abcdef"
	cfg.Legacy.Fleet.Addr = "off"
	cfg.Limits.RatePerIP, cfg.Limits.BurstPerIP = 0.001, 2
	if err := cfg.validate("all", allRoles()); err != nil {
		t.Fatal(err)
	}
	a := startTest(t, cfg, allRoles())
	u := "http://" + a.LegacyAddr("combined") + "/heartbeats"
	for i := range 2 {
		if code, body := legacyDo(t, "GET", u, map[string]string{"password": "guess"}, ""); code != http.StatusOK || !strings.Contains(body, "403") {
			t.Fatalf("guess %d = %d %s, want watchTower's 200 with result 403", i+1, code, body)
		}
	}
	if code, body := legacyDo(t, "GET", u, map[string]string{"password": "guess"}, ""); code != http.StatusTooManyRequests {
		t.Fatalf("third guess = %d %s, want 429", code, body)
	}
}
