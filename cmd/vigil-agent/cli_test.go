package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/agenttest"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// invoke runs the CLI with env as the whole environment.
func invoke(ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSections(t *testing.T) {
	env := map[string]string{"VIGIL_AGENT_STATE_DIR": t.TempDir()}
	ctx := context.Background()
	for cmd, header := range map[string]string{
		"cpu":       "percent used",
		"memory":    "available",
		"disks":     "MOUNT POINT",
		"processes": "PID",
		"network":   "INTERFACE",
	} {
		code, out, errs := invoke(ctx, env, cmd)
		if code != 0 || !strings.Contains(out, header) {
			t.Errorf("%s = %d\n%s%s, want a table with %q", cmd, code, out, errs, header)
		}
	}
	code, out, _ := invoke(ctx, env, "memory", "--json")
	var m vigil.MemoryStats
	if err := json.Unmarshal([]byte(out), &m); code != 0 || err != nil || m.Total == 0 {
		t.Errorf("memory --json = %d %s (%v)", code, out, err)
	}
	code, out, _ = invoke(ctx, env, "processes", "--json")
	var ps []vigil.ProcessInfo
	if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil {
		t.Fatalf("processes --json = %d (%v)", code, err)
	}
	found := false
	for _, p := range ps {
		found = found || p.PID == int32(os.Getpid())
	}
	if !found {
		t.Errorf("processes --json lacks this test's pid %d", os.Getpid())
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	if code, _, errs := invoke(ctx, nil, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command = %d %s", code, errs)
	}
	if code, _, _ := invoke(ctx, nil); code != 2 {
		t.Errorf("no command = %d, want 2", code)
	}
	code, out, _ := invoke(ctx, nil, "help", "run")
	for _, want := range []string{"--nats-url", "VIGIL_AGENT_NATS_URL", "yaml nats.url", "--buffer-max-bytes", "--pulse-next-in"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("help run lacks %q", want)
		}
	}
	if code, out, _ := invoke(ctx, nil, "cpu", "--help"); code != 0 || !strings.Contains(out, "--json") {
		t.Errorf("cpu --help = %d, want 0 and --json listed", code)
	}
	if code, out, _ := invoke(ctx, nil, "version"); code != 0 || !strings.HasPrefix(out, "vigil-agent ") {
		t.Errorf("version = %d %q", code, out)
	}
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(conf, []byte("interval: 30s\nintervall: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := invoke(ctx, nil, "check", "--config", conf); code != 2 || !strings.Contains(errs, "line 2: field intervall not found") {
		t.Errorf("check with a bad file = %d %s, want 2 naming line 2", code, errs)
	}
}

func TestGenerateSystemID(t *testing.T) {
	env := map[string]string{"VIGIL_AGENT_STATE_DIR": t.TempDir()}
	ctx := context.Background()
	_, first, _ := invoke(ctx, env, "generate-system-id")
	_, again, _ := invoke(ctx, env, "generate-system-id")
	_, renewed, _ := invoke(ctx, env, "generate-system-id", "--new")
	if first == "" || first != again || renewed == first {
		t.Errorf("ids %q %q %q: want a stable id, replaced by --new", first, again, renewed)
	}
}

func TestCheck(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{})
	ctx := context.Background()
	env := map[string]string{"VIGIL_AGENT_STATE_DIR": t.TempDir(), "VIGIL_AGENT_NATS_URL": st.NATSURL, "VIGIL_AGENT_SYSTEM_ID": "web1"}
	code, out, errs := invoke(ctx, env, "check")
	if code != 0 || !strings.Contains(out, "ok    publish stats") || !strings.Contains(out, "web1 has not been registered yet") {
		t.Errorf("check over nats = %d\n%s%s", code, out, errs)
	}
	code, out, _ = invoke(ctx, env, "check", "--transport", "http", "--http-url", st.HTTPURL, "--http-token", st.Token)
	if code != 0 || !strings.Contains(out, "ok    stats route") {
		t.Errorf("check over http = %d\n%s", code, out)
	}
	code, out, _ = invoke(ctx, env, "check", "--transport", "http", "--http-url", st.HTTPURL, "--http-token", "vgl_wrong")
	if code != 1 || !strings.Contains(out, "FAIL  stats route  credentials refused (401)") {
		t.Errorf("check with a wrong token = %d\n%s, want 1 and the refusal", code, out)
	}
}

// vigil-agent run sends stats and the heartbeat, and stops cleanly.
func TestRun(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{})
	env := map[string]string{
		"VIGIL_AGENT_STATE_DIR": t.TempDir(), "VIGIL_AGENT_NATS_URL": st.NATSURL,
		"VIGIL_AGENT_SYSTEM_ID": "web1", "VIGIL_AGENT_INTERVAL": "1s", "VIGIL_AGENT_LOG_LEVEL": "warn",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code, _, _ := invoke(ctx, env, "run")
		done <- code
	}()
	bustest.Eventually(t, func() error {
		if _, err := st.Assets.Pulses.Get(context.Background(), vigil.Token("host:web1")); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		if _, err := st.Assets.HostStats.GetLastMsgForSubject(context.Background(), vigil.HostStatsSubject("web1")); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run = %d after cancel, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}
