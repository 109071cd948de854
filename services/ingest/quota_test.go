package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/ingest"
)

// quotaIngest runs an ingest role with MaxServicesPerToken max on the
// server s, behind a real token guard, and returns its URL.
func quotaIngest(t *testing.T, s *bustest.Server, tokens []auth.Token, limit int) string {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.MaxServicesPerToken = limit
	role, err := ingest.New(cfg, ingest.Deps{Conn: s.Conn(t), Assets: s.Provision(t), Log: bustest.Logger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.NewGuard(tokens, bustest.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	rt.Use(g.Handler)
	role.Routes(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := role.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return srv.URL
}

func send(t *testing.T, method, url, secret, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

func pulse(name string) string { return fmt.Sprintf(`{"service":%q,"next_in":3600}`, name) }

// TestMaxServicesPerToken: a token owns the services it creates, up to the
// limit; an existing service is never refused, another token has its own
// budget, a refused batch stores nothing, a cancel frees nothing, and a
// restarted ingest reads the counts back from the bucket.
func TestMaxServicesPerToken(t *testing.T) {
	secrets := map[string]string{}
	var tokens []auth.Token
	for _, name := range []string{"a", "b"} {
		s, err := auth.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = s
		tokens = append(tokens, auth.Token{Name: name, SHA256: auth.Hash(s), Scopes: []auth.Scope{auth.ScopeIngest}})
	}
	s := bustest.New(t)
	url := quotaIngest(t, s, tokens, 2)
	// The counts load from the (empty) bucket first: 503 until then.
	bustest.Eventually(t, func() error {
		if code, msg := send(t, "POST", url+"/v1/pulses", secrets["a"], pulse("a1")); code != http.StatusOK && code != http.StatusAccepted {
			return fmt.Errorf("first pulse = %d %s", code, msg)
		}
		return nil
	})
	for _, tc := range []struct {
		token, method, path, body string
		want                      int
	}{
		{"a", "POST", "/v1/pulses", pulse("a2"), http.StatusAccepted},
		{"a", "POST", "/v1/pulses", pulse("a3"), http.StatusForbidden},
		{"a", "POST", "/v1/pulses", pulse("a1"), http.StatusAccepted}, // existing
		{"b", "POST", "/v1/pulses", pulse("a3"), http.StatusAccepted}, // b's own budget
		{"b", "POST", "/v1/pulses", `[` + pulse("b1") + `,` + pulse("b2") + `]`, http.StatusForbidden},
		{"a", "DELETE", "/v1/services/a1", "", http.StatusOK},
		{"a", "POST", "/v1/pulses", pulse("a4"), http.StatusForbidden}, // a cancel frees nothing
		{"b", "POST", "/v1/pulses", `[` + pulse("b1") + `,` + pulse("a1") + `]`, http.StatusAccepted},
	} {
		code, msg := send(t, tc.method, url+tc.path, secrets[tc.token], tc.body)
		if code != tc.want {
			t.Fatalf("token %s %s %s %s = %d %q, want %d", tc.token, tc.method, tc.path, tc.body, code, msg, tc.want)
		}
		if code == http.StatusForbidden && !strings.Contains(msg, "--max-services-per-token") {
			t.Errorf("403 error %q does not name the limit", msg)
		}
	}
	if _, err := s.Provision(t).Pulses.Get(context.Background(), vigil.Token("b2")); err == nil {
		t.Error("b2 of the refused batch was stored")
	}

	// A fresh ingest reads the owners back: a has a2 (a1 moved to b with
	// b's pulse), so one more; b has a3, b1 and a1, over its limit.
	url2 := quotaIngest(t, s, tokens, 2)
	var code int
	bustest.Eventually(t, func() error {
		code, _ = send(t, "POST", url2+"/v1/pulses", secrets["b"], pulse("b3"))
		if code == http.StatusServiceUnavailable {
			return fmt.Errorf("still counting")
		}
		return nil
	})
	if code != http.StatusForbidden {
		t.Fatalf("restarted: b's new service = %d, want 403", code)
	}
	if code, msg := send(t, "POST", url2+"/v1/pulses", secrets["a"], pulse("a5")); code != http.StatusAccepted {
		t.Fatalf("restarted: a's second service = %d %s, want 202", code, msg)
	}
	if code, _ := send(t, "POST", url2+"/v1/pulses", secrets["a"], pulse("a6")); code != http.StatusForbidden {
		t.Fatalf("restarted: a's third service = %d, want 403", code)
	}
}
