package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/config"
)

func load(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	c := config.Default()
	c.StateDir = t.TempDir()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	b := config.Bind(fs, &c)
	err := config.Load(b, &c, args, func(k string) string { return env[k] })
	return c, err
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
interval: 30s
transport: http
http:
  url: http://file:8080
  token: filetoken
nats:
  url: nats://file:4222
owner:
  type: mail
  target: ops@example.com
thresholds:
  - cpu_percent > 90 for 5m
  - when: disk_free_percent{mount=/} < 10
    clear: 15
    level: critical
    name: root-disk
`)
	env := map[string]string{
		"VIGIL_AGENT_CONFIG":   file,
		"VIGIL_AGENT_INTERVAL": "20s",
		"VIGIL_AGENT_HTTP_URL": "http://env:8080",
		"VIGIL_AGENT_PULSE":    "false",
	}
	c, err := load(t, []string{"--interval", "10s"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != 10*time.Second {
		t.Errorf("interval = %v, want the flag's 10s", c.Interval)
	}
	if c.HTTP.URL != "http://env:8080" || c.HTTP.Token != "filetoken" || c.NATS.URL != "nats://file:4222" {
		t.Errorf("http %q token %q nats %q: want env over file, file over defaults", c.HTTP.URL, c.HTTP.Token, c.NATS.URL)
	}
	if c.Transport != "http" || c.Pulse.Enabled || !c.Processes || c.ConfigFile != file {
		t.Errorf("transport %q pulse %v processes %v file %q", c.Transport, c.Pulse.Enabled, c.Processes, c.ConfigFile)
	}
	if c.Owner != (vigil.Owner{Type: "mail", Target: "ops@example.com"}) {
		t.Errorf("owner = %+v", c.Owner)
	}
	rules, err := c.Rules()
	if err != nil || len(rules) != 2 {
		t.Fatalf("Rules() = %v, %v", rules, err)
	}
	if rules[0].Name != "cpu_percent > 90 for 5m" || rules[0].For != 5*time.Minute || rules[0].Level != vigil.LevelWarning {
		t.Errorf("rule 0 = %+v", rules[0])
	}
	if rules[1].Name != "root-disk" || *rules[1].Clear != 15 || rules[1].Level != vigil.LevelCritical || rules[1].Metric.Value != "/" {
		t.Errorf("rule 1 = %+v", rules[1])
	}
	if c.PulseNextIn() != 20*time.Second || c.PulseService("web1") != "host:web1" {
		t.Errorf("pulse next_in %v service %q", c.PulseNextIn(), c.PulseService("web1"))
	}
	if s := c.LogValue().String(); strings.Contains(s, "filetoken") || !strings.Contains(s, "REDACTED") {
		t.Errorf("LogValue leaks the token: %s", s)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"bad interval flag", []string{"--interval", "soon"}, nil, "", "invalid value"},
		{"short interval", []string{"--interval", "10ms"}, nil, "", "--interval 10ms: must be at least 1s"},
		{"bad env", nil, map[string]string{"VIGIL_AGENT_PROCESSES": "maybe"}, "", "VIGIL_AGENT_PROCESSES"},
		{"transport", []string{"--transport", "smtp"}, nil, "", "--transport \"smtp\": want nats or http"},
		{"owner", []string{"--owner-type", "mail", "--owner-target", "not an address"}, nil, "", "--owner-target: must be a bare e-mail address"},
		{"toast name", []string{"--toast-name", "my desk"}, nil, "", "--toast-name \"my desk\""},
		{"unknown key names the line", nil, nil, "interval: 10s\nintreval: 5s\n", "line 2: field intreval not found"},
		{"bad yaml names the line", nil, nil, "interval: 10s\nnats: [\n", "line 2"},
		{"bad threshold", nil, nil, "thresholds:\n  - cpu > 90\n", "thresholds[0]: threshold \"cpu > 90\": unknown metric"},
		{"bad threshold level", nil, nil, "thresholds:\n  - when: cpu_percent > 90\n    level: loud\n", "thresholds[0].level"},
		{"system id", []string{"--system-id", strings.Repeat("x", 300)}, nil, "", "--system-id"},
		{"buffer", []string{"--buffer-max-bytes", "10"}, nil, "", "--buffer-max-bytes 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			_, err := load(t, args, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := load(t, []string{"--help"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help = %v, want flag.ErrHelp", err)
	}
}

func TestEnvNames(t *testing.T) {
	c := config.Default()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	for _, o := range config.Bind(fs, &c).Opts {
		if !regexp.MustCompile(`^VIGIL_AGENT_[A-Z0-9_]+$`).MatchString(config.EnvName(o.Name)) {
			t.Errorf("env name of --%s = %s", o.Name, config.EnvName(o.Name))
		}
	}
	if config.EnvName("nats-url") != "VIGIL_AGENT_NATS_URL" {
		t.Errorf("EnvName(nats-url) = %s", config.EnvName("nats-url"))
	}
}

func TestSystemID(t *testing.T) {
	dir := t.TempDir()
	id, err := config.StoredSystemID(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^(Linux|Windows|Darwin|[A-Z][a-z0-9]+)-[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("id %q is not in System Monitor's format", id)
	}
	again, err := config.StoredSystemID(dir, false)
	if err != nil || again != id {
		t.Errorf("second read = %q, %v; want the stored %q", again, err, id)
	}
	renewed, err := config.StoredSystemID(dir, true)
	if err != nil || renewed == id {
		t.Errorf("renew = %q, %v; want a new id", renewed, err)
	}
	c := config.Default()
	c.StateDir = dir
	if got, _ := c.ID(); got != renewed {
		t.Errorf("Config.ID() = %q, want the stored %q", got, renewed)
	}
	c.SystemID = "WIN-1"
	if got, _ := c.ID(); got != "WIN-1" {
		t.Errorf("Config.ID() with system_id = %q", got)
	}
}
