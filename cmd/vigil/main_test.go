package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, `
http_addr: "127.0.0.1:9001"
log:
  level: debug
streams:
  replicas: 3
watchdog:
  gap_threshold: 20s
  gap_policy: each
ingest:
  max_batch: 500
`)
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		modify func(*Config)
	}{
		{name: "defaults", modify: func(*Config) {}},
		{
			name: "file over defaults",
			args: []string{"--config", file},
			modify: func(c *Config) {
				c.ConfigFile = file
				c.HTTPAddr = "127.0.0.1:9001"
				c.Log.Level = "debug"
				c.Streams.Replicas = 3
				c.Watchdog.GapThreshold = 20 * time.Second
				c.Watchdog.GapPolicy = "each"
				c.Ingest.MaxBatch = 500
			},
		},
		{
			name: "env over file, file named by env",
			env: map[string]string{
				"VIGIL_CONFIG": file, "VIGIL_GAP_THRESHOLD": "25s", "VIGIL_NATS_SYNC_ALWAYS": "true",
				"VIGIL_MAX_BATCH": "600",
			},
			modify: func(c *Config) {
				c.ConfigFile = file
				c.HTTPAddr = "127.0.0.1:9001"
				c.Log.Level = "debug"
				c.Streams.Replicas = 3
				c.Watchdog.GapThreshold = 25 * time.Second
				c.Watchdog.GapPolicy = "each"
				c.Ingest.MaxBatch = 600
				c.NATS.SyncAlways = true
			},
		},
		{
			name: "flags over env over file",
			args: []string{"--gap-threshold=30s", "--replicas", "1", "--nats-listen", "off", "--config", file},
			env:  map[string]string{"VIGIL_GAP_THRESHOLD": "25s", "VIGIL_REPLICAS": "5", "VIGIL_LOG_LEVEL": "warn"},
			modify: func(c *Config) {
				c.ConfigFile = file
				c.HTTPAddr = "127.0.0.1:9001"
				c.Log.Level = "warn"
				c.Streams.Replicas = 1
				c.Watchdog.GapThreshold = 30 * time.Second
				c.Watchdog.GapPolicy = "each"
				c.Ingest.MaxBatch = 500
				c.NATS.Listen = "off"
			},
		},
		{
			name:   "explicitly empty --config ignores VIGIL_CONFIG",
			args:   []string{"--config="},
			env:    map[string]string{"VIGIL_CONFIG": file},
			modify: func(*Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig("all", allRoles(), tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("loadConfig(%q) error: %v", tt.args, err)
			}
			want := defaultConfig()
			tt.modify(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("loadConfig(%q) mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		args []string
		env  map[string]string
		want string // substring of the error
	}{
		{
			name: "unknown YAML key names its line", cmd: "all",
			args: []string{"--config", writeFile(t, "http_addr: \":1\"\nwatchdog:\n  gap_treshold: 3s\n")},
			want: "line 3: field gap_treshold not found",
		},
		{
			name: "YAML type error names its line", cmd: "all",
			args: []string{"--config", writeFile(t, "streams:\n  replicas: many\n")},
			want: "line 2: cannot unmarshal",
		},
		{
			name: "bad duration in YAML", cmd: "all",
			args: []string{"--config", writeFile(t, "\n\nstreams:\n  lease_ttl: soon\n")},
			want: "line 4",
		},
		{
			name: "missing file", cmd: "all", args: []string{"--config", "/nonexistent/vigil.yaml"},
			want: "config file",
		},
		{
			name: "bad env value names the variable", cmd: "all",
			env: map[string]string{"VIGIL_GAP_THRESHOLD": "fifteen"}, want: "VIGIL_GAP_THRESHOLD",
		},
		{name: "bad flag", cmd: "all", args: []string{"--gap-threshold", "x"}, want: "gap-threshold"},
		{name: "unknown flag", cmd: "all", args: []string{"--nope"}, want: "nope"},
		{name: "positional argument", cmd: "all", args: []string{"extra"}, want: `unexpected argument "extra"`},
		{name: "single role needs nats url", cmd: "ingest", want: "--nats-url"},
		{
			name: "role flag of another role", cmd: "ingest", args: []string{"--nats-url=nats://x:4222", "--gap-threshold=1s"},
			want: "gap-threshold",
		},
		{name: "log format", cmd: "all", args: []string{"--log-format=xml"}, want: "--log-format"},
		{name: "lease ttl whole seconds", cmd: "all", args: []string{"--lease-ttl=1500ms"}, want: "--lease-ttl"},
		{name: "gap policy checked by the watchdog", cmd: "all", args: []string{"--gap-policy=never"}, want: "watchdog"},
		{name: "ingest max body checked by ingest", cmd: "all", args: []string{"--max-body=0"}, want: "ingest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roles, _ := serverRoles(tt.cmd)
			_, err := loadConfig(tt.cmd, roles, tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig(%s, %q) = %v, want an error containing %q", tt.cmd, tt.args, err, tt.want)
			}
		})
	}
}

// TestFlagsAndYAMLKeysAgree sets each option once through its flag and once
// through its YAML key and checks both land in the same field.
func TestFlagsAndYAMLKeysAgree(t *testing.T) {
	probe := &Config{}
	*probe = defaultConfig()
	b := bind(flag.NewFlagSet("", flag.ContinueOnError), probe, "all", allRoles())
	for _, o := range b.Opts {
		if o.Key == "" {
			continue
		}
		t.Run(o.Name, func(t *testing.T) {
			viaFlag := defaultConfig()
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			bind(fs, &viaFlag, "all", allRoles())
			f := fs.Lookup(o.Name)
			var v, yamlV string // yamlV: the YAML form when it differs
			switch f.Value.(flag.Getter).Get().(type) {
			case []auth.Token:
				h := auth.Hash("x7")
				v, yamlV = "ci:"+h+":read+ingest", "[{name: ci, sha256: "+h+", scopes: [read, ingest]}]"
			case time.Duration:
				v = "7s"
			case int, int64:
				v = "7"
			case bool:
				v = "true"
			case float64:
				v = "7.5"
			case []string:
				v, yamlV = "x7,y8", "[x7, y8]"
			default:
				v = "x7"
			}
			if err := fs.Set(o.Name, v); err != nil {
				t.Fatalf("Set(%s, %s): %v", o.Name, v, err)
			}
			// Build the nested YAML document for the dotted key.
			parts := strings.Split(o.Key, ".")
			var doc strings.Builder
			for i, p := range parts {
				fmt.Fprintf(&doc, "%s%s:", strings.Repeat("  ", i), p)
				if i < len(parts)-1 {
					doc.WriteString("\n")
				}
			}
			if yamlV == "" {
				yamlV = v
			}
			fmt.Fprintf(&doc, " %s\n", yamlV)
			viaFile := defaultConfig()
			if err := decodeFile(writeFile(t, doc.String()), &viaFile); err != nil {
				t.Fatalf("decode %q: %v", doc.String(), err)
			}
			if diff := cmp.Diff(viaFlag, viaFile); diff != "" {
				t.Errorf("--%s=%s and yaml %s differ (-flag +yaml):\n%s", o.Name, v, o.Key, diff)
			}
		})
	}
}

func TestHelpListsEveryOption(t *testing.T) {
	for _, cmd := range append([]string{"all"}, allRoles()...) {
		t.Run(cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{cmd, "--help"}, env(nil), &stdout, &stderr); code != 0 {
				t.Fatalf("run(%s --help) = %d, want 0; stderr %s", cmd, code, stderr.String())
			}
			roles, _ := serverRoles(cmd)
			cfg := defaultConfig()
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			bind(fs, &cfg, cmd, roles)
			n := 0
			fs.VisitAll(func(f *flag.Flag) {
				n++
				for _, want := range []string{"--" + f.Name, envName(f.Name), fmt.Sprintf("default %q", f.DefValue)} {
					if !strings.Contains(stdout.String(), want) {
						t.Errorf("vigil %s --help lacks %q", cmd, want)
					}
				}
			})
			if n < 15 {
				t.Errorf("vigil %s has %d flags, want at least 15", cmd, n)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: []string{"version"}, code: 0, stdout: "nats-server v"},
		{args: []string{"help"}, code: 0, stdout: "Server commands"},
		{args: []string{"help", "watchdog"}, code: 0, stdout: "--gap-threshold"},
		{args: []string{"--help"}, code: 0, stdout: "--nats-listen"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"api"}, code: 2, stderr: "--nats-url"},
		{args: []string{"all", "--replicas=0"}, code: 2, stderr: "--replicas"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, env(nil), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want %d, stdout with %q, stderr with %q",
				tt.args, code, trim(stdout.String()), trim(stderr.String()), tt.code, tt.stdout, tt.stderr)
		}
	}
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func TestSecretsAreRedacted(t *testing.T) {
	cfg := defaultConfig()
	cfg.NATS.URL = "nats://alice:hunter2@nats-1:4222,nats://nats-2:4222"
	cfg.NATS.Password = "s3cret-pass"
	cfg.NATS.Token = "s3cret-token"
	var buf bytes.Buffer
	newLogger(LogConfig{Level: "info", Format: "json"}, &buf).Info("config", "config", cfg)
	for _, secret := range []string{"hunter2", "s3cret-pass", "s3cret-token"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("logged config contains %q: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "nats-2:4222") {
		t.Errorf("logged config lost the URL: %s", buf.String())
	}
}

// testConfig returns a config for vigil all on free ports and a temp dir.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	cfg := defaultConfig()
	cfg.DataDir = dir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	if err := cfg.validate("all", allRoles()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startTest starts the app and waits until it is ready; it is stopped when
// the test ends.
func startTest(t *testing.T, cfg Config, roles []string) *app {
	t.Helper()
	a, err := startApp(context.Background(), cfg, roles, bustest.Logger(t))
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
	return a
}

func do(t *testing.T, method, url, body string) (int, []byte) {
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// alertReader reads stream VIGIL_ALERTS in order from the start.
type alertReader struct {
	msgs jetstream.MessagesContext
}

func readAlerts(t *testing.T, natsURL string) *alertReader {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, vigil.StreamAlerts, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("alerts consumer: %v", err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(msgs.Stop)
	return &alertReader{msgs: msgs}
}

// next returns the next alert, failing the test if none arrives in time.
func (r *alertReader) next(t *testing.T, timeout time.Duration) vigil.Alert {
	t.Helper()
	type result struct {
		m   jetstream.Msg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := r.msgs.Next()
		ch <- result{m, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("next alert: %v", res.err)
		}
		var a vigil.Alert
		if err := json.Unmarshal(res.m.Data(), &a); err != nil {
			t.Fatalf("alert %s: %v", res.m.Data(), err)
		}
		return a
	case <-time.After(timeout):
		r.msgs.Stop() // ends the pending Next
		<-ch
		t.Fatalf("no alert within %v", timeout)
	}
	return vigil.Alert{}
}

// TestAllEndToEnd runs vigil all in-process on random ports: a service that
// stops pulsing raises exactly one down alert, its next pulse exactly one
// recovered alert, and a restart on the same data keeps the service.
func TestAllEndToEnd(t *testing.T) {
	dir := t.TempDir()
	a := startTest(t, testConfig(t, dir), allRoles())
	base := "http://" + a.HTTPAddr()

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := do(t, http.MethodGet, base+path, ""); code != http.StatusOK {
			t.Fatalf("GET %s = %d %s, want 200", path, code, body)
		}
	}
	alerts := readAlerts(t, a.NATSURL())

	code, body := do(t, http.MethodPost, base+"/v1/pulses", `{"service":"db backup","next_in":1}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses = %d %s, want 202", code, body)
	}
	down := alerts.next(t, 10*time.Second)
	if down.Kind != vigil.AlertDown || down.Service != "db backup" {
		t.Fatalf("first alert = %s %q, want down \"db backup\"", down.Kind, down.Service)
	}
	code, body = do(t, http.MethodPost, base+"/v1/pulses", `{"service":"db backup","next_in":3600}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses = %d %s, want 202", code, body)
	}
	rec := alerts.next(t, 10*time.Second)
	if rec.Kind != vigil.AlertRecovered || rec.Service != "db backup" || rec.DownSeq != down.DownSeq {
		t.Fatalf("second alert = %s %q (outage %d), want recovered \"db backup\" (outage %d)",
			rec.Kind, rec.Service, rec.DownSeq, down.DownSeq)
	}
	st, err := jsFor(t, a.NATSURL()).Stream(context.Background(), vigil.StreamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("VIGIL_ALERTS holds %d alerts, want exactly 2 (down, recovered)", n)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--server", base}, env(nil), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "db backup") {
		t.Errorf("vigil status = %d, stdout %q, stderr %q; want 0 and a row for \"db backup\"", code, out.String(), errOut.String())
	}

	code, body = do(t, http.MethodGet, base+"/metrics", "")
	if code != http.StatusOK || !bytes.Contains(body, []byte("vigil_notifier_alerts_total")) || !bytes.Contains(body, []byte("go_goroutines")) {
		t.Errorf("GET /metrics = %d, want 200 with vigil_ and go_ metrics", code)
	}
	if code, _ := do(t, http.MethodGet, base+"/nope", ""); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}

	// A graceful stop and a restart on the same data lose nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	a2 := startTest(t, testConfig(t, dir), allRoles())
	code, body = do(t, http.MethodGet, "http://"+a2.HTTPAddr()+"/v1/services/db%20backup", "")
	var s vigil.ServiceStatus
	if code != http.StatusOK || json.Unmarshal(body, &s) != nil || s.Status != vigil.StatusUp {
		t.Errorf("after restart GET /v1/services/db%%20backup = %d %s, want 200 and status up", code, body)
	}
}

func jsFor(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestSingleRoleExternalNATS runs the ingest role alone against an external
// server: it provisions the streams itself and stores a pulse.
func TestSingleRoleExternalNATS(t *testing.T) {
	s := bustest.New(t)
	cfg := defaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATS.URL = s.ClientURL()
	if err := cfg.validate("ingest", []string{"ingest"}); err != nil {
		t.Fatal(err)
	}
	a := startTest(t, cfg, []string{"ingest"})
	code, body := do(t, http.MethodPost, "http://"+a.HTTPAddr()+"/v1/pulses", `{"service":"cron","next_in":60}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses = %d %s, want 202", code, body)
	}
	e, err := jsFor(t, s.ClientURL()).KeyValue(context.Background(), vigil.BucketPulses)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(context.Background(), vigil.Token("cron")); err != nil {
		t.Errorf("pulse not stored in %s: %v", vigil.BucketPulses, err)
	}
}

// lineWatcher is an io.Writer that closes found when a line containing
// want has been written.
type lineWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	found chan struct{}
	once  sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.found) })
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunStopsCleanly runs the real command line until it is ready, then
// cancels its context as SIGTERM would, and expects exit code 0.
func TestRunStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWatcher{want: "vigil ready", found: make(chan struct{})}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--http-addr=127.0.0.1:0", "--nats-listen=off", "--log-format=json"},
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
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("run = %d after cancel, want 0: %s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancel")
	}
	if !strings.Contains(stderr.String(), `"msg":"vigil stopped"`) {
		t.Errorf("log lacks vigil stopped: %s", stderr.String())
	}
}

// BenchmarkStartAll measures the start-up of vigil all on a fresh data dir:
// from startApp to the first passing readiness check, then a full stop.
func BenchmarkStartAll(b *testing.B) {
	log := bustest.Logger(b)
	var total time.Duration
	n := 0
	for b.Loop() {
		cfg := testConfig(b, b.TempDir())
		start := time.Now()
		a, err := startApp(context.Background(), cfg, allRoles(), log)
		if err != nil {
			b.Fatal(err)
		}
		<-a.ready
		total += time.Since(start)
		n++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := a.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "ms-to-ready")
}

// TestREADMEConfigSample checks that the sample YAML file in the README
// decodes strictly and says exactly the defaults.
func TestREADMEConfigSample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, conf, ok0 := strings.Cut(string(readme), "## Configuration")
	if !ok0 {
		t.Fatal("README.md has no Configuration section")
	}
	_, rest, ok := strings.Cut(conf, "```yaml\n")
	sample, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```yaml block")
	}
	got := defaultConfig()
	got.Log.Level = "changed" // the sample must set it back
	if err := decodeFile(writeFile(t, sample), &got); err != nil {
		t.Fatalf("README sample: %v", err)
	}
	if diff := cmp.Diff(defaultConfig(), got); diff != "" {
		t.Errorf("README sample differs from the defaults (-defaults +sample):\n%s", diff)
	}
}

// TestReadyzReportsLostNATS runs every role against an external NATS server
// and stops it: /healthz stays 200 while /readyz turns 503 and names the
// role that lost it; Stop still returns promptly and cleanly.
func TestReadyzReportsLostNATS(t *testing.T) {
	s := bustest.New(t)
	cfg := defaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATS.URL = s.ClientURL()
	a := startTest(t, cfg, allRoles())
	base := "http://" + a.HTTPAddr()
	if code, body := do(t, http.MethodGet, base+"/readyz", ""); code != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s, want 200", code, body)
	}
	s.Stop()
	// The client notices the closed socket on its own schedule; poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := do(t, http.MethodGet, base+"/readyz", "")
		var got struct{ Status, Error string }
		if code == http.StatusServiceUnavailable {
			if err := json.Unmarshal(body, &got); err != nil || !strings.Contains(got.Error, "role ") {
				t.Errorf("GET /readyz = %s, want JSON naming the role", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %d %s 10s after NATS stopped, want 503", code, body)
		}
		time.Sleep(10 * time.Millisecond) // polling an outside condition, not synchronising
	}
	if code, _ := do(t, http.MethodGet, base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", code)
	}
}

// TestREADMENotifierSample checks that the notifier example in the README
// loads and validates: keys, routes, receivers, channel settings.
func TestREADMENotifierSample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "### Notifications")
	_, rest, ok2 := strings.Cut(sec, "```yaml\n")
	sample, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no yaml block under Notifications")
	}
	cfg := defaultConfig()
	if err := decodeFile(writeFile(t, sample), &cfg); err != nil {
		t.Fatalf("README notifier sample: %v", err)
	}
	if err := cfg.validate("all", allRoles()); err != nil {
		t.Fatalf("README notifier sample: %v", err)
	}
}
