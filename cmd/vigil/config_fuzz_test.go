package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secrets returns the secret values of c: what LogValue redacts.
func secrets(c *Config) []*string {
	s := []*string{
		&c.NATS.Password, &c.NATS.Token,
		&c.Notifier.Mail.Password, &c.Notifier.Pushover.Token, &c.Notifier.Webhook.Secret,
		&c.Legacy.WatchTower.Password, &c.Legacy.Traylert.Key,
	}
	for i := range c.Auth.Tokens {
		s = append(s, &c.Auth.Tokens[i].SHA256)
	}
	return s
}

// userinfo returns the user-info parts ("user:password") of a
// comma-separated URL list.
func userinfo(list string) []string {
	var out []string
	for p := range strings.SplitSeq(list, ",") {
		_, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if i := strings.LastIndex(rest, "@"); i > 0 {
			out = append(out, rest[:i])
		}
	}
	return out
}

// FuzzConfigFile loads fuzzed YAML configuration files as vigil all does
// (strict decoding, then every role's validation). Properties: no panic;
// a loaded configuration logs the same text whatever its secrets are (the
// NATS password and token, the SMTP password, the Pushover token, the
// webhook secret and headers, the watchTower password, the Traylert key
// the token hashes and the password in the NATS URL: LogValue depends on
// none of them); and an error
// never quotes a secret of 8 bytes or more that the file holds once.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"http_addr: 127.0.0.1:0\nlog:\n  level: debug\n",
		"nats:\n  url: nats://user:hunter2hunter2@nats:4222,nats://u:p%zz@n2:4222\n  password: hunter2hunter2\n  token: s3cr3t-t0ken\n",
		"notifier:\n  mail:\n    host: smtp.example.com\n    from: vigil@example.com\n    password: smtp-password-1\n  pushover:\n    token: azGDORePK8gMaC0QOYAMyEEuzJnyUi\n  webhook:\n    enabled: true\n    secret: webhook-secret-1\n    headers:\n      Authorization: Bearer abcdefgh\n",
		"legacy:\n  watchtower:\n    password: wt-password-1\n  traylert:\n    key: 0123456789abcdef\n",
		"legacy:\n  traylert:\n    key: short-key-12\n",
		"auth:\n  tokens:\n    - name: ci\n      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n      scopes: [write]\n",
		"ingest:\n  max_body: -1\n", "streams:\n  replicas: 9\n", "unknown: 1\n", "nats: [1, 2]\n",
		"api:\n  max_streams: 0\n", "&a [*a]\n", "a: !!binary AAAA\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(t.TempDir(), "vigil.yaml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := func(string) string { return "" }
		cfg, err := loadConfig("all", allRoles(), []string{"--config", path}, getenv)
		if err != nil {
			raw := defaultConfig()
			if decodeFile(path, &raw) != nil {
				return
			}
			for _, s := range secrets(&raw) {
				if len(*s) >= 8 && bytes.Count(file, []byte(*s)) == 1 && strings.Contains(err.Error(), *s) {
					t.Fatalf("loadConfig(%q) error %q quotes the secret %q", file, err, *s)
				}
			}
			return
		}
		want := cfg.LogValue().String()
		other := cfg
		other.Auth.Tokens = append(other.Auth.Tokens[:0:0], cfg.Auth.Tokens...)
		for _, s := range secrets(&other) {
			if *s != "" {
				*s = "another secret"
			}
		}
		if h := cfg.Notifier.Webhook.Headers; len(h) > 0 {
			other.Notifier.Webhook.Headers = map[string]string{}
			for k := range h {
				other.Notifier.Webhook.Headers[k] = "another secret"
			}
		}
		for _, ui := range userinfo(other.NATS.URL) {
			if _, pw, ok := strings.Cut(ui, ":"); ok && pw != "" {
				other.NATS.URL = strings.ReplaceAll(other.NATS.URL, "://"+ui+"@", "://someone:another-secret@")
			}
		}
		if got := other.LogValue().String(); got != want {
			t.Fatalf("LogValue depends on the secrets of %q:\n%s\nvs\n%s", file, want, got)
		}
	})
}
