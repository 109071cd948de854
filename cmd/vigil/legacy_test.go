package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

// legacyDo sends a request with headers hdr and returns status and body.
func legacyDo(t *testing.T, method, url string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
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
	return resp.StatusCode, string(b)
}

// vigil all with the combined legacy listener (watchTower, Traylert, System
// Monitor) and fleet on its own listener under a prefix: a watchTower
// heartbeat is a vigil pulse seen by the native API, a System Monitor
// check_url is accepted, and the fleet feed sends unit frames.
func TestLegacyListeners(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Legacy.Addr = "127.0.0.1:0"
	cfg.Legacy.WatchTower.Password = "change me"
	cfg.Legacy.Traylert.Key = "0123456789abcdef"
	cfg.Legacy.Traylert.LowDisk = 0
	cfg.Legacy.Fleet.Addr = "127.0.0.1:0"
	cfg.Legacy.Fleet.Prefix = "/fleet"
	cfg.Legacy.Fleet.UnitEvery = 50 * time.Millisecond
	if err := cfg.validate("all", allRoles()); err != nil {
		t.Fatal(err)
	}
	a := startTest(t, cfg, allRoles())
	u := "http://" + a.LegacyAddr("combined")
	if a.LegacyAddr("combined") == "" || a.LegacyAddr("watchtower") != "" {
		t.Fatalf("listeners: combined %q, watchtower %q", a.LegacyAddr("combined"), a.LegacyAddr("watchtower"))
	}

	// compat.md §2.2: pulse, answered on HTTP 200 with the result in the body.
	body := `{"service":"legacy-svc","alertType":"pushover","alertTarget":"uQiRzpo4DXghDmr9QzzfQu27cmVRsG","nextIn":60}`
	code, got := legacyDo(t, "POST", u+"/heartbeat", map[string]string{"password": "change me", "Content-Type": "application/json"}, body)
	var res map[string]any
	if err := json.Unmarshal([]byte(got), &res); code != http.StatusOK || err != nil || res["result"] != 200.0 || res["action"] != "pulse" {
		t.Fatalf("POST /heartbeat = %d %s", code, got)
	}
	code, got = legacyDo(t, "POST", u+"/heartbeat", map[string]string{"password": "wrong"}, body)
	if err := json.Unmarshal([]byte(got), &res); code != http.StatusOK || err != nil || res["result"] != 403.0 {
		t.Errorf("POST /heartbeat with a wrong password = %d %s", code, got)
	}
	bustest.Eventually(t, func() error {
		code, b := do(t, "GET", "http://"+a.HTTPAddr()+"/v1/services/legacy-svc", "")
		if code != http.StatusOK {
			return fmt.Errorf("GET /v1/services/legacy-svc = %d %s", code, b)
		}
		var s vigil.ServiceStatus
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s.Origin != "watchtower" || s.NextIn.D() != time.Minute {
			return fmt.Errorf("service = %+v", s)
		}
		return nil
	})

	// compat.md case 24: GET /gui redirects to vigil's pages, served on the
	// legacy listener itself (the default GUI target is relative).
	code, got = legacyDo(t, "GET", u+"/gui", nil, "")
	if code != http.StatusOK || !strings.Contains(got, "<html") {
		t.Errorf("GET /gui on the legacy listener = %d %.200s", code, got)
	}

	// compat.md §4: System Monitor on the combined listener.
	if code, got := legacyDo(t, "POST", u+"/", map[string]string{"Content-Type": "application/json"}, `{"action": "check_url"}`); code != http.StatusAccepted {
		t.Errorf("check_url = %d %s", code, got)
	}

	// compat.md §3.3: the fleet feed on its own listener, under its prefix.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+a.LegacyAddr("fleet")+"/fleet/", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://localhost:8000"}}})
	if err != nil {
		t.Fatalf("fleet dial: %v", err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	defer func() { _ = c.CloseNow() }()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("fleet read: %v", err)
		}
		var fr legacy.Frame
		if err := json.Unmarshal(b, &fr); err != nil {
			t.Fatal(err)
		}
		if fr.Type == "unit" {
			break
		}
	}
}

func TestLegacyConfigErrors(t *testing.T) {
	tests := []struct {
		name, cmd, yaml string
		args            []string
		want            string
	}{
		{name: "only vigil all", cmd: "ingest", yaml: "legacy:\n  addr: \":5000\"\n", args: []string{"--nats-url=nats://x:4222"}, want: "vigil all"},
		{name: "flags only on vigil all", cmd: "api", args: []string{"--nats-url=nats://x:4222", "--legacy-addr=:5000"}, want: "legacy-addr"},
		{name: "enabled without a listener", cmd: "all", yaml: "legacy:\n  sysmon:\n    enabled: true\n", want: "--sysmon-addr"},
		{name: "prefix is a path", cmd: "all", args: []string{"--legacy-addr=:5000", "--watchtower-prefix=wt"}, want: "--watchtower-prefix"},
		{name: "tls pair", cmd: "all", args: []string{"--legacy-addr=:5000", "--legacy-tls-cert=c.pem"}, want: "--legacy-tls-key"},
		{name: "traylert key", cmd: "all", args: []string{"--legacy-addr=:5000", "--traylert-key=short"}, want: "legacy.traylert"},
		{name: "time zone", cmd: "all", args: []string{"--legacy-addr=:5000", "--watchtower-time-zone=Mars/Olympus"}, want: "legacy.watchtower"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" {
				args = append([]string{"--config", writeFile(t, tt.yaml)}, args...)
			}
			roles, _ := serverRoles(tt.cmd)
			_, err := loadConfig(tt.cmd, roles, args, env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig(%s, %q) = %v, want an error containing %q", tt.cmd, args, err, tt.want)
			}
		})
	}
	// Off by default; the secrets never reach the log.
	cfg, err := loadConfig("all", allRoles(), []string{"--legacy-addr=:5000", "--watchtower-password=pw-s3cret", "--traylert-key=key-s3cret-01234"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if defaultConfig().Legacy.active() {
		t.Error("legacy surfaces are on by default")
	}
	v := cfg.LogValue().String()
	if strings.Contains(v, "s3cret") || !strings.Contains(v, ":5000") {
		t.Errorf("logged config: %s", v)
	}
}

// A surface with only its own address runs alone there, under its prefix.
func TestLegacyOwnListener(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Legacy.SysMon.Addr = "127.0.0.1:0"
	cfg.Legacy.SysMon.Prefix = "/sm/"
	if err := cfg.validate("all", allRoles()); err != nil {
		t.Fatal(err)
	}
	a := startTest(t, cfg, allRoles())
	if a.LegacyAddr("combined") != "" || a.LegacyAddr("fleet") != "" {
		t.Errorf("listeners: combined %q, fleet %q", a.LegacyAddr("combined"), a.LegacyAddr("fleet"))
	}
	u := "http://" + a.LegacyAddr("sysmon")
	if code, got := legacyDo(t, "POST", u+"/sm/", nil, `{"action": "check_url"}`); code != http.StatusAccepted {
		t.Errorf("check_url under the prefix = %d %s", code, got)
	}
	if code, _ := legacyDo(t, "POST", u+"/", nil, `{"action": "check_url"}`); code != http.StatusNotFound {
		t.Errorf("check_url outside the prefix = %d, want 404", code)
	}
}
