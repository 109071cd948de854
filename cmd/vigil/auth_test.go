package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/auth"
)

// testTokens makes one token per scope set and returns them with their
// secrets by name.
func testTokens(t *testing.T) ([]auth.Token, map[string]string) {
	t.Helper()
	secrets := map[string]string{}
	var tokens []auth.Token
	for name, scopes := range map[string][]auth.Scope{
		"reader": {auth.ScopeRead},
		"sender": {auth.ScopeIngest},
		"admin":  {auth.ScopeWrite},
	} {
		s, err := auth.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = s
		tokens = append(tokens, auth.Token{Name: name, SHA256: auth.Hash(s), Scopes: scopes})
	}
	return tokens, secrets
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged is startTest with the app's log kept in a buffer (debug
// level, so every line that could leak a token is written).
func startLogged(t *testing.T, cfg Config) (*app, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Debug("configuration", "config", cfg)
	a, err := startApp(context.Background(), cfg, allRoles(), log)
	if err != nil {
		t.Fatalf("startApp: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	select {
	case <-a.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("vigil not ready after 20s")
	}
	return a, logs
}

// testWriter shows the app's log in verbose test runs.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// answer is a response, read in full.
type answer struct {
	code   int
	header http.Header
	body   string
}

// call sends one request with an optional bearer token and JSON body.
func call(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// TestAuthAPI runs vigil all with tokens and checks every native route
// needs one with the right scope, while the health endpoints, the metrics
// and the OpenAPI document stay open; and that no secret reaches the log.
func TestAuthAPI(t *testing.T) {
	tokens, secrets := testTokens(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Auth.Tokens = tokens
	a, logs := startLogged(t, cfg)
	base := "http://" + a.HTTPAddr()
	pulse := `{"service":"auth-test","next_in":60}`
	tests := []struct {
		name, method, path, token, body string
		code                            int
		challenge, err                  string
	}{
		{"no token", "GET", "/v1/services", "", "", 401, `Bearer realm="vigil"`, "missing bearer token: send Authorization: Bearer <token>"},
		{"no token, pulse", "POST", "/v1/pulses", "", pulse, 401, `Bearer realm="vigil"`, "missing bearer token: send Authorization: Bearer <token>"},
		{"no token, unknown path", "GET", "/v1/nothing", "", "", 401, `Bearer realm="vigil"`, "missing bearer token: send Authorization: Bearer <token>"},
		{"invalid token", "GET", "/v1/services", "vgl_invalid", "", 401, `Bearer realm="vigil", error="invalid_token"`, "invalid token"},
		{"hash is not a token", "GET", "/v1/services", tokens[0].SHA256, "", 401, `Bearer realm="vigil", error="invalid_token"`, "invalid token"},
		{"read token posts", "POST", "/v1/pulses", secrets["reader"], pulse, 403, `Bearer realm="vigil", error="insufficient_scope", scope="ingest"`, `token "reader" lacks scope ingest`},
		{"read token cancels", "DELETE", "/v1/services/auth-test", secrets["reader"], "", 403, `Bearer realm="vigil", error="insufficient_scope", scope="ingest"`, `token "reader" lacks scope ingest`},
		{"ingest token pulses", "POST", "/v1/pulses", secrets["sender"], pulse, 202, "", ""},
		{"ingest token reads", "GET", "/v1/services", secrets["sender"], "", 403, `Bearer realm="vigil", error="insufficient_scope", scope="read"`, `token "sender" lacks scope read`},
		{"read token reads", "GET", "/v1/services/auth-test", secrets["reader"], "", 200, "", ""},
		{"read token reads the watchdog", "GET", "/v1/watchdog", secrets["reader"], "", 200, "", ""},
		{"ingest token cancels", "DELETE", "/v1/services/auth-test", secrets["sender"], "", 200, "", ""},
		{"write token raises an alert", "POST", "/v1/alerts", secrets["admin"], `{"title":"t","message":"m","level":"error"}`, 202, "", ""},
		{"write token reads", "GET", "/v1/services", secrets["admin"], "", 200, "", ""},
		{"write token, unknown path", "GET", "/v1/nothing", secrets["admin"], "", 404, "", "not found"},
		{"healthz is open", "GET", "/healthz", "", "", 200, "", ""},
		{"readyz is open", "GET", "/readyz", "", "", 200, "", ""},
		{"metrics are open by default", "GET", "/metrics", "", "", 200, "", ""},
		{"openapi document is open", "GET", "/v1/openapi.json", "", "", 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, tt.method, base+tt.path, tt.token, tt.body)
			b := resp.body
			if resp.code != tt.code {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, resp.code, tt.code, b)
			}
			if got := resp.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if tt.err == "" {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(b), &e); err != nil || e.Error != tt.err {
				t.Errorf("body = %s, want {\"error\":%q}", b, tt.err)
			}
		})
	}

	// The user commands send $VIGIL_TOKEN.
	var out, errOut bytes.Buffer
	getenv := env(map[string]string{"VIGIL_SERVER": base, "VIGIL_TOKEN": secrets["reader"]})
	if code := run(context.Background(), []string{"status"}, getenv, &out, &errOut); code != 0 {
		t.Errorf("vigil status with VIGIL_TOKEN = %d: %s", code, errOut.String())
	}
	getenv = env(map[string]string{"VIGIL_SERVER": base})
	if code := run(context.Background(), []string{"status"}, getenv, &out, &errOut); code == 0 {
		t.Error("vigil status without a token = 0, want a failure")
	}

	if m := call(t, "GET", base+"/metrics", "", "").body; !strings.Contains(m, `vigil_http_auth_denied_total{reason="scope"} 3`) {
		t.Errorf("metrics lack the denials by reason:\n%s", grep(m, "vigil_http_auth"))
	}
	l := logs.String()
	for name, s := range secrets {
		if strings.Contains(l, s) {
			t.Errorf("the log shows the secret of token %s", name)
		}
	}
	for _, tok := range tokens {
		if strings.Contains(l, tok.SHA256) {
			t.Errorf("the log shows the hash of token %s", tok.Name)
		}
	}
	if !strings.Contains(l, "token=reader") || !strings.Contains(l, "token=sender") {
		t.Errorf("the log does not name the tokens refused with 403:\n%s", grep(l, "scope"))
	}
	if strings.Contains(l, "runs without tokens") {
		t.Error("the log warns that the API runs without tokens, but it has some")
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// TestAuthProtectMetrics checks --protect-metrics: /metrics needs a read
// token, the health endpoints stay open.
func TestAuthProtectMetrics(t *testing.T) {
	tokens, secrets := testTokens(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Auth.Tokens = tokens
	cfg.Auth.ProtectMetrics = true
	a, _ := startLogged(t, cfg)
	base := "http://" + a.HTTPAddr()
	for _, tt := range []struct {
		path, token string
		code        int
	}{
		{"/metrics", "", 401},
		{"/metrics", secrets["sender"], 403},
		{"/metrics", secrets["reader"], 200},
		{"/healthz", "", 200},
		{"/v1/openapi.json", "", 200},
	} {
		if resp := call(t, "GET", base+tt.path, tt.token, ""); resp.code != tt.code {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.code, tt.code)
		}
	}
}

// TestAuthOpenOnLoopback checks that vigil runs without tokens on loopback
// and says so in the log.
func TestAuthOpenOnLoopback(t *testing.T) {
	a, logs := startLogged(t, testConfig(t, t.TempDir()))
	resp := call(t, "POST", "http://"+a.HTTPAddr()+"/v1/pulses", "", `{"service":"open","next_in":60}`)
	if resp.code != http.StatusAccepted {
		t.Errorf("POST /v1/pulses without auth = %d, want 202: %s", resp.code, resp.body)
	}
	if !strings.Contains(logs.String(), "the HTTP API runs without tokens") {
		t.Errorf("no warning that the API is open:\n%s", logs.String())
	}
}

// TestAuthConfig checks when vigil refuses to start: without tokens on an
// address beyond loopback, unless --insecure (flag, environment or YAML).
func TestAuthConfig(t *testing.T) {
	tokens, _ := testTokens(t)
	list := auth.FormatTokens(tokens)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		ok   bool
	}{
		{"default address is loopback", nil, nil, true},
		{"all interfaces, no tokens", []string{"--http-addr", ":8080"}, nil, false},
		{"0.0.0.0, no tokens", []string{"--http-addr", "0.0.0.0:8080"}, nil, false},
		{"a LAN address, no tokens", []string{"--http-addr", "192.0.2.1:8080"}, nil, false},
		{"IPv6 any, no tokens", []string{"--http-addr", "[::]:8080"}, nil, false},
		{"IPv6 loopback", []string{"--http-addr", "[::1]:8080"}, nil, true},
		{"localhost", []string{"--http-addr", "localhost:0"}, nil, true},
		{"--insecure", []string{"--http-addr", ":8080", "--insecure"}, nil, true},
		{"VIGIL_INSECURE", []string{"--http-addr", ":8080"}, map[string]string{"VIGIL_INSECURE": "true"}, true},
		{"yaml insecure", []string{"--http-addr", ":8080", "--config", writeFile(t, "insecure: true\n")}, nil, true},
		{"--auth-tokens", []string{"--http-addr", ":8080", "--auth-tokens", list}, nil, true},
		{"VIGIL_AUTH_TOKENS", []string{"--http-addr", ":8080"}, map[string]string{"VIGIL_AUTH_TOKENS": list}, true},
		{"yaml auth.tokens", []string{"--http-addr", ":8080", "--config", writeFile(t,
			"auth:\n  tokens:\n    - name: ci\n      sha256: "+tokens[0].SHA256+"\n      scopes: [read, ingest]\n")}, nil, true},
		{"yaml bad scope", []string{"--config", writeFile(t,
			"auth:\n  tokens:\n    - name: ci\n      sha256: "+tokens[0].SHA256+"\n      scopes: [admin]\n")}, nil, false},
		{"bad VIGIL_AUTH_TOKENS", nil, map[string]string{"VIGIL_AUTH_TOKENS": "ci:abc:read"}, false},
		{"--protect-metrics without tokens", []string{"--protect-metrics"}, nil, false},
		{"single role, all interfaces, no tokens", []string{"--http-addr", ":8080", "--nats-url", "nats://127.0.0.1:4222"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, roles := "all", allRoles()
			if strings.HasPrefix(tt.name, "single role") {
				cmd, roles = "api", []string{"api"}
			}
			cfg, err := loadConfig(cmd, roles, tt.args, env(tt.env))
			if tt.ok && err != nil {
				t.Fatalf("loadConfig(%q) = %v, want no error", tt.args, err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("loadConfig(%q) = nil error, want one", tt.args)
			}
			if strings.Contains(tt.name, "tokens") && tt.ok && len(cfg.Auth.Tokens) != 1 && len(cfg.Auth.Tokens) != 3 {
				t.Errorf("loadConfig(%q) tokens = %v", tt.args, cfg.Auth.Tokens)
			}
		})
	}

	// The command line says why it refuses, and how to fix it.
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--http-addr", ":0"}, env(map[string]string{"VIGIL_DATA_DIR": t.TempDir()}), &stdout, &stderr)
	if code != 2 {
		t.Errorf("vigil --http-addr :0 without tokens = %d, want 2", code)
	}
	for _, want := range []string{"refusing to serve the API without tokens beyond loopback", "vigil token create", "--auth-tokens", "--insecure"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the refusal does not say %q: %s", want, stderr.String())
		}
	}
}

// TestAuthInsecure runs the real command line with --insecure on every
// interface and expects the loud warning.
func TestAuthInsecure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWatcher{want: "vigil ready", found: make(chan struct{})}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--http-addr=:0", "--insecure", "--nats-listen=off"},
			env(map[string]string{"VIGIL_DATA_DIR": t.TempDir()}), io.Discard, stderr)
	}()
	select {
	case <-stderr.found:
	case c := <-code:
		t.Fatalf("run returned %d before ready: %s", c, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("not ready after 20s: %s", stderr.String())
	}
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("run = %d after cancel, want 0", c)
	}
	if !strings.Contains(stderr.String(), "level=WARN msg=\"INSECURE: the HTTP API runs without tokens on an address beyond loopback") {
		t.Errorf("no loud warning with --insecure:\n%s", stderr.String())
	}
}

// Two processes configured with one --csrf-key issue the same CSRF token
// for a session, so a page from one api replica acts through another.
func TestCSRFKeySharedByReplicas(t *testing.T) {
	tokens, secrets := testTokens(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Auth.Tokens = tokens
	cfg.Auth.CSRFKey = "0123456789abcdef0123456789abcdef"
	one, err := newGuard(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	two, err := newGuard(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := one.CSRFToken(secrets["admin"]), two.CSRFToken(secrets["admin"]); a != b {
		t.Errorf("CSRF tokens differ across guards with one key: %q, %q", a, b)
	}
	cfg.Auth.CSRFKey = "short"
	if err := cfg.validateAuth(); err == nil || !strings.Contains(err.Error(), "--csrf-key") {
		t.Errorf("a 5-byte key: err = %v, want one naming --csrf-key", err)
	}
}
