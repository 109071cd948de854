package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/agenttest"
	"github.com/vigil-monitor/vigil/agent/buffer"
	"github.com/vigil-monitor/vigil/agent/transport"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func statsItem(t *testing.T, host, id string, cpu float64) buffer.Item {
	t.Helper()
	b, err := json.Marshal(vigil.HostStats{Host: host, At: t0, CPU: vigil.CPUStats{Count: 1, PercentUsed: cpu}})
	if err != nil {
		t.Fatal(err)
	}
	return buffer.Item{Kind: transport.KindStats, ID: id, Key: host, At: t0, Body: b}
}

func jsonItem(t *testing.T, kind, id string, v any) buffer.Item {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return buffer.Item{Kind: kind, ID: id, At: t0, Body: b}
}

func dialNATS(t *testing.T, url string, mod ...func(*transport.NATSConfig)) *transport.NATS {
	t.Helper()
	cfg := transport.NATSConfig{URL: url, Name: "vigil-agent test", Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	n, err := transport.DialNATS(cfg, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	bustest.Eventually(t, func() error {
		if !n.Conn().IsConnected() {
			return errors.New("not connected yet")
		}
		return nil
	})
	return n
}

func newHTTP(t *testing.T, url, token string) *transport.HTTP {
	t.Helper()
	h, err := transport.NewHTTP(transport.HTTPConfig{URL: url, Token: token, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// Both transports store stats, pulses and alerts the same way, once per id.
func TestSend(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{})
	for _, tc := range []struct {
		name   string
		sender transport.Sender
	}{
		{"nats", dialNATS(t, st.NATSURL)},
		{"http", newHTTP(t, st.HTTPURL, st.IngestToken)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			host := "host." + tc.name
			for range 2 { // the second is a retry of the first
				if err := tc.sender.Send(ctx, statsItem(t, host, "stats-"+tc.name, 42)); err != nil {
					t.Fatalf("Send(stats) = %v", err)
				}
			}
			if n := count(t, st.Assets.HostStats, vigil.HostStatsSubject(host)); n != 1 {
				t.Errorf("%s stored %d stats, want 1 (dedup by id)", tc.name, n)
			}
			bustest.Eventually(t, func() error {
				e, err := st.Assets.Hosts.Get(ctx, vigil.Token(host))
				if err != nil {
					return err
				}
				var s vigil.HostStats
				if err := json.Unmarshal(e.Value(), &s); err != nil || s.CPU.PercentUsed != 42 {
					return fmt.Errorf("vigil_hosts has %s", e.Value())
				}
				return nil
			})

			svc := "host:" + host
			p := vigil.Pulse{Service: svc, NextIn: vigil.Seconds(2 * time.Minute), Host: host}
			if err := tc.sender.Send(ctx, jsonItem(t, transport.KindPulse, "pulse-"+tc.name, p)); err != nil {
				t.Fatalf("Send(pulse) = %v", err)
			}
			if _, err := st.Assets.Pulses.Get(ctx, vigil.Token(svc)); err != nil {
				t.Errorf("pulse of %s not stored: %v", svc, err)
			}
			bad := vigil.Pulse{Service: svc}
			if err := tc.sender.Send(ctx, jsonItem(t, transport.KindPulse, "bad-"+tc.name, bad)); !transport.IsRejected(err) || !strings.Contains(err.Error(), "next_in") {
				t.Errorf("Send(invalid pulse) = %v, want ErrRejected naming next_in", err)
			}

			a := vigil.ManualAlert{Service: svc, Title: "disk full", Message: "/ at 95%", Level: vigil.LevelWarning}
			for range 2 {
				if err := tc.sender.Send(ctx, jsonItem(t, transport.KindAlert, "alert-"+tc.name, a)); err != nil {
					t.Fatalf("Send(alert) = %v", err)
				}
			}
			if n := count(t, st.Assets.Alerts, vigil.AlertSubject(vigil.AlertManual, svc)); n != 1 {
				t.Errorf("%s stored %d alerts, want 1", tc.name, n)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{})
	ctx := context.Background()
	n := dialNATS(t, st.NATSURL)
	h := newHTTP(t, st.HTTPURL, st.Token)
	for name, s := range map[string]transport.Sender{"nats": n, "http": h} {
		r := s.Check(ctx, "web1")
		if !r.OK() || !strings.Contains(r[len(r)-1].Detail, "not been registered") {
			t.Errorf("%s Check before any stats = %+v, want ok and not registered", name, r)
		}
	}
	if err := n.Send(ctx, statsItem(t, "web1", "s1", 1)); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]transport.Sender{"nats": n, "http": h} {
		bustest.Eventually(t, func() error {
			r := s.Check(ctx, "web1")
			if !r.OK() || !strings.Contains(r[len(r)-1].Detail, "is registered, last stats at 2026-05-01T12:00:00Z") {
				return fmt.Errorf("%s Check = %+v, want ok and registered", name, r)
			}
			return nil
		})
	}
	// The checks stored nothing.
	info, err := st.Assets.HostStats.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d stats, want the 1 sent", info.State.Msgs)
	}
	// An ingest-only token passes but cannot tell the registration.
	if r := newHTTP(t, st.HTTPURL, st.IngestToken).Check(ctx, "web1"); !r.OK() || !strings.Contains(r[len(r)-1].Detail, "cannot tell") {
		t.Errorf("Check with an ingest token = %+v", r)
	}
	if r := newHTTP(t, st.HTTPURL, "vgl_wrong").Check(ctx, "web1"); r.OK() || !strings.Contains(r[0].Detail, "credentials refused (401)") {
		t.Errorf("Check with a wrong token = %+v, want a failure naming 401", r)
	}
}

// With NATS permissions, check tells a user that may not publish stats.
func TestCheckPermissions(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{
		NATSConfig: `authorization {
  users = [
    {user: vigil, password: vigil}
    {user: agent, password: agent, permissions: {publish: ["vigil.host.stats.>", "vigil.in.>", "$JS.API.DIRECT.GET.>"], subscribe: ["_INBOX.>"]}}
    {user: limited, password: limited, permissions: {publish: ["vigil.in.>"], subscribe: ["_INBOX.>"]}}
  ]
}`,
		RoleUser: "vigil", RolePassword: "vigil",
	})
	ctx := context.Background()
	agent := dialNATS(t, st.NATSURL, func(c *transport.NATSConfig) { c.User, c.Password = "agent", "agent" })
	if r := agent.Check(ctx, "web1"); !r.OK() {
		t.Errorf("Check as agent = %+v, want ok", r)
	}
	limited := dialNATS(t, st.NATSURL, func(c *transport.NATSConfig) {
		c.User, c.Password, c.Timeout = "limited", "limited", 500*time.Millisecond
	})
	r := limited.Check(ctx, "web1")
	if r.OK() || r[1].OK || !strings.Contains(r[1].Detail, "Permissions Violation") {
		t.Errorf("Check as limited = %+v, want the stats probe to fail naming the permissions violation", r)
	}
	if _, err := transport.DialNATS(transport.NATSConfig{URL: st.NATSURL, Auth: natsconn.Auth{NKeyFile: "/nonexistent"}}, nil); err == nil {
		t.Error("DialNATS with a missing nkey file = nil error")
	}
}

// A stopped server is a transient error at once, never ErrRejected.
func TestSendWhileDown(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{})
	n := dialNATS(t, st.NATSURL, func(c *transport.NATSConfig) { c.Timeout = 200 * time.Millisecond })
	st.StopNATS()
	bustest.Eventually(t, func() error {
		err := n.Send(context.Background(), statsItem(t, "web1", "x", 1))
		if err == nil || transport.IsRejected(err) {
			return fmt.Errorf("Send while down = %w, want a transient error", err)
		}
		return nil
	})
	r := n.Check(context.Background(), "web1")
	if r.OK() || r[0].Name != "connect" {
		t.Errorf("Check while down = %+v, want a failed connect", r)
	}
}

// count returns how many messages stream holds on subject.
func count(t *testing.T, s jetstream.Stream, subject string) uint64 {
	t.Helper()
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}
