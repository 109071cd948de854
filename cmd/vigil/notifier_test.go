package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

const notifierYAML = `
notifier:
  external_url: https://vigil.example.com
  mail:
    host: 127.0.0.1
    tls: none
    from: vigil <vigil@example.com>
    username: vigil
  webhook:
    enabled: true
    headers: {Authorization: Bearer hook-secret-header}
  owner:
    repeat: 1h
  routes:
    - name: db
      match: {service: "db-.*", level: error}
      receivers: [{type: mail, target: dba@example.com}]
      escalate:
        - after: 15m
          receivers: [{type: webhook, target: "https://hooks.example.com/x"}]
  default:
    receivers: [{type: email, target: ops@example.com}]
  templates:
    down: {title: "DOWN {{.Service}}"}
`

func TestNotifierConfigFromYAMLAndEnv(t *testing.T) {
	path := writeFile(t, notifierYAML)
	cfg, err := loadConfig("notifier", []string{"notifier"}, []string{"--config", path, "--nats-url", "nats://127.0.0.1:4222"},
		env(map[string]string{"VIGIL_NOTIFIER_SMTP_PASSWORD": "smtp-secret-pw", "VIGIL_NOTIFIER_WEBHOOK_SECRET": "hook-hmac-key"}))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	n, err := cfg.notifier()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ch := range n.Channels {
		types = append(types, ch.Type())
	}
	if got := strings.Join(types, ","); got != "mail,webhook" {
		t.Errorf("channels = %s, want mail,webhook", got)
	}
	if len(n.Routes) != 1 || n.Routes[0].Escalate[0].After != 15*time.Minute || n.Owner.Repeat != time.Hour {
		t.Errorf("routes = %+v, owner = %+v", n.Routes, n.Owner)
	}
	if n.Default.Receivers[0] != (vigil.Owner{Type: "email", Target: "ops@example.com"}) {
		t.Errorf("default = %+v", n.Default)
	}
	if cfg.Notifier.Mail.Password != "smtp-secret-pw" {
		t.Errorf("mail password from the environment not applied")
	}
	var buf bytes.Buffer
	newLogger(LogConfig{Level: "info", Format: "json"}, &buf).Info("config", "config", cfg)
	for _, secret := range []string{"smtp-secret-pw", "hook-hmac-key", "hook-secret-header"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("logged config contains %q", secret)
		}
	}
	if !strings.Contains(buf.String(), "dba@example.com") {
		t.Errorf("logged config lost the routes: %s", buf.String())
	}
}

func TestWebhookAddressOptionsFromEnv(t *testing.T) {
	cfg, err := loadConfig("notifier", []string{"notifier"}, []string{"--nats-url", "nats://127.0.0.1:4222", "--notifier-webhooks"},
		env(map[string]string{"VIGIL_NOTIFIER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8, 10.0.0.0/8", "VIGIL_NOTIFIER_WEBHOOK_DENY_PRIVATE": "true"}))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	w := cfg.Notifier.Webhook
	if !w.DenyPrivate || strings.Join(w.AllowedNetworks, ",") != "127.0.0.0/8,10.0.0.0/8" {
		t.Errorf("deny_private %t, allowed_networks %q", w.DenyPrivate, w.AllowedNetworks)
	}
	_, err = loadConfig("notifier", []string{"notifier"}, []string{"--nats-url", "nats://127.0.0.1:4222", "--notifier-webhooks"},
		env(map[string]string{"VIGIL_NOTIFIER_WEBHOOK_ALLOWED_NETWORKS": "intranet"}))
	if err == nil || !strings.Contains(err.Error(), "allowed_networks") || !strings.Contains(err.Error(), "intranet") {
		t.Errorf("loadConfig(allowed_networks intranet) = %v, want an error naming the option", err)
	}
}

func TestNotifierConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{
			"notifier:\n  routes: [{name: r, receivers: [{type: pushover, target: uQiRzpo4DXghDmr9QzzfQu27cmVRsG}]}]\n",
			"notifier: routes[0].receivers[0]: channel pushover is not configured",
		},
		{"notifier:\n  templates: {down: {title: '{{.Nope}}'}}\n", "templates.down.title"},
		{"notifier:\n  mail: {host: smtp.example.com}\n", "notifier.mail"},
		{"notifier:\n  routes: [{name: r, match: {service: '('}, receivers: [{type: toast, target: d}]}]\n", "routes[0].match.service"},
		{"notifier:\n  webhook: {enabled: true, allowed_networks: [10.0.0.0/33]}\n", "notifier.webhook: webhook config: allowed_networks"},
	} {
		path := writeFile(t, tc.yaml)
		_, err := loadConfig("notifier", []string{"notifier"}, []string{"--config", path, "--nats-url", "nats://127.0.0.1:4222"}, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: loadConfig = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}
