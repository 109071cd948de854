package config_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/agent/config"
)

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

// FuzzAgentConfig loads fuzzed YAML files as vigil-agent does (strict
// decoding, threshold expressions, validation). Properties: no panic, and
// a loaded configuration logs the same text whatever its secrets are (the
// NATS password and token, the HTTP token, and the user info of the URLs).
func FuzzAgentConfig(f *testing.F) {
	for _, s := range []string{
		"system_id: web-1\ninterval: 30s\ntransport: http\nhttp:\n  url: https://vigil.example.com\n  token: vgl_abcdefghijklmnop\n",
		"nats:\n  url: nats://agent:s3cret-pass@nats:4222,nats://other:pw@n2:4222\n  password: s3cret-pass\n",
		"thresholds:\n  - cpu > 90\n  - when: disk./ > 95\n    clear: 90\n    level: critical\n    name: root disk\n",
		"thresholds:\n  - when: cpu >\n", "thresholds:\n  - memory >= 1e999\n",
		"pulse:\n  enabled: true\n  service: host:web-1\n  next_in: 1ns\n",
		"owner:\n  type: mail\n  target: ops@example.com\n", "buffer:\n  max_bytes: -5\n", "interval: -1s\n", "x: 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		c := config.Default()
		c.StateDir = t.TempDir()
		b := config.Bind(flag.NewFlagSet("vigil-agent", flag.ContinueOnError), &c)
		if err := config.Load(b, &c, []string{"--config", path}, func(string) string { return "" }); err != nil {
			return
		}
		if _, err := c.Rules(); err != nil {
			t.Fatalf("Load(%q) validated but Rules fails: %v", file, err)
		}
		want := c.LogValue().String()
		other := c
		for _, s := range []*string{&other.NATS.Password, &other.NATS.Token, &other.HTTP.Token} {
			if *s != "" {
				*s = "another secret"
			}
		}
		for _, u := range []*string{&other.NATS.URL, &other.HTTP.URL} {
			for _, ui := range userinfo(*u) {
				if _, pw, ok := strings.Cut(ui, ":"); ok && pw != "" {
					*u = strings.ReplaceAll(*u, "://"+ui+"@", "://someone:another-secret@")
				}
			}
		}
		if got := other.LogValue().String(); got != want {
			t.Fatalf("LogValue depends on the secrets of %q:\n%s\nvs\n%s", bytes.TrimSpace(file), want, got)
		}
	})
}
