package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/smtptest"
)

// TestNoSecretInLogs runs vigil all with every kind of secret configured
// (API tokens, the SMTP password, the Pushover token, the webhook secret
// and a secret webhook header, the watchTower password, the Traylert AES
// key), logs the configuration at debug level as main does, and drives
// the paths that log failures: a bad API token, a bad watchTower password,
// and one alert per channel whose delivery fails (SMTP AUTH refused,
// Pushover and the webhook answering 500). No secret may appear in the log
// or in the delivery records the API shows.
func TestNoSecretInLogs(t *testing.T) {
	const (
		smtpPassword  = "smtp-SECRET-0001"
		pushoverToken = "aSECRETpushoverTOKEN0000000002"
		webhookSecret = "webhook-SECRET-0003"
		webhookHeader = "header-SECRET-0004"
		wtPassword    = "watchtower-SECRET-0005"
		traylertKey   = "traylertSECRET06" // 16 bytes: AES-128
		csrfKey       = "csrf-key-SECRET-0007-0123456789abcdef"
	)
	tokens, apiSecrets := testTokens(t)
	smtp := smtptest.New(t, smtptest.WithAuth("vigil", "the-right-password"))
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"status":0,"errors":["something went wrong"]}`, http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	legacyAddr := ln.Addr().String()
	ln.Close()

	file := fmt.Sprintf(`
notifier:
  mail: {host: 127.0.0.1, port: %d, tls: none, from: vigil@example.com, username: vigil, password: %s}
  pushover: {token: %s, base_url: %s}
  webhook: {enabled: true, secret: %s, headers: {X-Api-Key: %s}, allowed_hosts: [127.0.0.1], allowed_networks: [127.0.0.0/8]}
auth:
  csrf_key: %s
legacy:
  addr: %s
  watchtower: {password: %s}
  traylert: {key: %s}
`, smtp.Port(), smtpPassword, pushoverToken, failing.URL, webhookSecret, webhookHeader, csrfKey, legacyAddr, wtPassword, traylertKey)
	dir := t.TempDir()
	cfg, err := loadConfig("all", allRoles(), []string{
		"--config", writeFile(t, file), "--data-dir", dir,
		"--http-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
	}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Tokens = tokens
	a, logs := startLogged(t, cfg)
	base := "http://" + a.HTTPAddr()

	if got := call(t, "GET", base+"/v1/services", "vgl_not-a-real-token", ""); got.code != http.StatusUnauthorized {
		t.Fatalf("bad token = %d, want 401", got.code)
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+legacyAddr+"/heartbeats", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("password", wtPassword+"-wrong")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	for _, o := range []string{
		`{"type":"mail","target":"ops@example.com"}`,
		`{"type":"pushover","target":"uQiRzpo4DXghDmr9QzzfQu27cmVRsG"}`,
		`{"type":"webhook","target":"` + failing.URL + `/hook"}`,
	} {
		body := fmt.Sprintf(`{"service":"secret test %d","next_in":1,"owner":%s}`, len(o), o)
		if got := call(t, "POST", base+"/v1/pulses", apiSecrets["sender"], body); got.code != http.StatusAccepted && got.code != http.StatusOK {
			t.Fatalf("pulse = %d %s", got.code, got.body)
		}
	}
	var deliveries string
	bustest.Eventually(t, func() error {
		got := call(t, "GET", base+"/v1/deliveries?limit=100", apiSecrets["reader"], "")
		var page struct {
			Items []struct{ Channel, Status, Error string }
		}
		if err := json.Unmarshal([]byte(got.body), &page); err != nil {
			return fmt.Errorf("deliveries: %d %s", got.code, got.body)
		}
		failed := map[string]bool{}
		for _, d := range page.Items {
			if d.Error != "" {
				failed[d.Channel] = true
			}
		}
		if len(failed) < 3 {
			return fmt.Errorf("failed deliveries on %v, want mail, pushover and webhook", failed)
		}
		deliveries = got.body
		return nil
	})
	all := map[string]string{
		"smtp password": smtpPassword, "pushover token": pushoverToken, "webhook secret": webhookSecret,
		"webhook header": webhookHeader, "watchtower password": wtPassword, "traylert key": traylertKey, "csrf key": csrfKey,
	}
	for name, s := range apiSecrets {
		all["api token "+name] = s
	}
	out := logs.String()
	if !strings.Contains(out, "REDACTED") || !strings.Contains(out, "configuration") {
		t.Fatalf("the configuration was not logged redacted; log:\n%s", out)
	}
	for name, s := range all {
		if strings.Contains(out, s) {
			t.Errorf("the log holds the %s: %s", name, grep(out, s))
		}
		if strings.Contains(deliveries, s) {
			t.Errorf("the delivery records hold the %s", name)
		}
	}
}
