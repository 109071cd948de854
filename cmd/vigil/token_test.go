package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/vigil-monitor/vigil/internal/auth"
)

// TestTokenCreate checks that vigil token create prints a token once, and
// a YAML entry and an environment entry that both admit exactly it.
func TestTokenCreate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runToken([]string{"create", "--name", "ci", "--scope", "read", "--scope", "INGEST,read"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("vigil token create = %d: %s", code, stderr.String())
	}
	out := stdout.String()
	secret, rest, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(secret, auth.Prefix) || len(secret) != len(auth.Prefix)+43 {
		t.Fatalf("first line = %q, want the token", secret)
	}
	if strings.Count(out, secret) != 1 {
		t.Errorf("the token is printed %d times, want once", strings.Count(out, secret))
	}
	want := []auth.Token{{Name: "ci", SHA256: auth.Hash(secret), Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeIngest}}}

	_, yamlPart, _ := strings.Cut(rest, "auth:\n")
	yamlPart, _, _ = strings.Cut(yamlPart, "\n\n")
	var file struct{ Auth AuthConfig }
	if err := yaml.Unmarshal([]byte("auth:\n"+yamlPart), &file); err != nil {
		t.Fatalf("YAML entry %q: %v", yamlPart, err)
	}
	if diff := cmp.Diff(want, file.Auth.Tokens); diff != "" {
		t.Errorf("YAML entry mismatch (-want +got):\n%s", diff)
	}

	_, envPart, ok := strings.Cut(rest, "VIGIL_AUTH_TOKENS=")
	if !ok {
		t.Fatalf("no VIGIL_AUTH_TOKENS entry in:\n%s", out)
	}
	cfg, err := loadConfig("all", allRoles(), []string{"--http-addr", ":8080"},
		env(map[string]string{"VIGIL_AUTH_TOKENS": strings.TrimSpace(envPart)}))
	if err != nil {
		t.Fatalf("loadConfig with the printed VIGIL_AUTH_TOKENS: %v", err)
	}
	if diff := cmp.Diff(want, cfg.Auth.Tokens); diff != "" {
		t.Errorf("environment entry mismatch (-want +got):\n%s", diff)
	}
}

func TestTokenHash(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runToken([]string{"hash"}, strings.NewReader("vgl_abc\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("vigil token hash = %d: %s", code, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != auth.Hash("vgl_abc") {
		t.Errorf("vigil token hash = %q, want %q", got, auth.Hash("vgl_abc"))
	}
}

func TestTokenErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"delete"},
		{"create", "--scope", "read"},
		{"create", "--name", "ci"},
		{"create", "--name", "ci", "--scope", "admin"},
		{"create", "--name", "c i", "--scope", "read"},
		{"create", "--name", "ci", "--scope", "read", "extra"},
		{"hash", "vgl_on_the_command_line"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runToken(args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("vigil token %q = %d, want 2", args, code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runToken([]string{"hash"}, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Errorf("vigil token hash with empty stdin = %d, want 2", code)
	}
}
