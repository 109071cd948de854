package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/agent/agenttest"
	"github.com/vigil-monitor/vigil/agent/collect"
	"github.com/vigil-monitor/vigil/agent/config"
	"github.com/vigil-monitor/vigil/agent/transport"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// scripted is the real collector with the CPU percent replaced by a
// script, so threshold rules cross at known cycles.
type scripted struct {
	mu   sync.Mutex
	real *collect.Collector
	cpu  []float64
}

func (s *scripted) Collect(ctx context.Context, id string, now time.Time) (*vigil.HostStats, error) {
	st, err := s.real.Collect(ctx, id, now)
	if st == nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cpu) > 0 {
		st.CPU.PercentUsed, s.cpu = s.cpu[0], s.cpu[1:]
	}
	return st, err
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	st    *agenttest.Stack
	cfg   config.Config
	clk   *clock
	coll  *scripted
	send  transport.Sender
	agent *agent.Agent
}

func newEnv(t *testing.T, transportName string, cpu ...float64) *env {
	t.Helper()
	st := agenttest.Start(t, agenttest.Options{})
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.Interval = time.Minute
	cfg.Transport = transportName
	cfg.Owner = vigil.Owner{Type: "mail", Target: "ops@example.com"}
	cfg.Thresholds = []config.ThresholdConfig{{When: "cpu_percent > 90 for 2m", Level: "error"}}
	e := &env{st: st, cfg: cfg, clk: &clock{t: t0}, coll: &scripted{real: collect.New(collect.Options{Processes: true, FirstSample: 10 * time.Millisecond}), cpu: cpu}}
	switch transportName {
	case "nats":
		n, err := transport.DialNATS(transport.NATSConfig{URL: st.NATSURL, Timeout: 2 * time.Second}, bustest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		bustest.Eventually(t, func() error {
			if !n.Conn().IsConnected() {
				return errors.New("not connected")
			}
			return nil
		})
		e.send = n
	case "http":
		h, err := transport.NewHTTP(transport.HTTPConfig{URL: st.HTTPURL, Token: st.IngestToken, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		e.send = h
	}
	e.open(t)
	return e
}

// open (re)starts the agent on the same state directory.
func (e *env) open(t *testing.T) {
	t.Helper()
	if e.agent != nil {
		e.agent.Close()
	}
	a, err := agent.New(e.cfg, "web1", agent.Deps{Sender: e.send, Collector: e.coll, Log: bustest.Logger(t), Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e.agent = a
}

func (e *env) cycle(t *testing.T) {
	t.Helper()
	if err := e.agent.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
}

// stats returns the collection times of web1's stored stats, in stream order.
func (e *env) stats(t *testing.T) []time.Time {
	t.Helper()
	var ats []time.Time
	ctx := context.Background()
	for seq := uint64(1); ; seq++ {
		m, err := e.st.Assets.HostStats.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			info, _ := e.st.Assets.HostStats.Info(ctx)
			if seq > info.State.LastSeq {
				return ats
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var s vigil.HostStats
		if err := json.Unmarshal(m.Data, &s); err != nil {
			t.Fatal(err)
		}
		ats = append(ats, s.At)
	}
}

// alerts returns the titles of the manual alerts stored for web1.
func (e *env) alerts(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var titles []string
	info, err := e.st.Assets.Alerts.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := e.st.Assets.Alerts.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var a vigil.Alert
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, fmt.Sprintf("%s [%s] %s", a.Title, a.Level, a.Owner.Target))
	}
	return titles
}

func times(from time.Time, n int) []time.Time {
	var ts []time.Time
	for i := range n {
		ts = append(ts, from.Add(time.Duration(i)*time.Minute))
	}
	return ts
}

func TestCycleSendsStatsPulseAndThresholdAlerts(t *testing.T) {
	for _, tr := range []string{"nats", "http"} {
		t.Run(tr, func(t *testing.T) {
			// cpu: fires after 2 minutes above 90, recovers after 2 minutes below.
			e := newEnv(t, tr, 95, 96, 97, 98, 10, 10, 10, 10)
			for range 8 {
				e.cycle(t)
			}
			if got := e.stats(t); !slices.Equal(got, times(t0, 8)) {
				t.Errorf("stored stats at %v, want one per cycle", got)
			}
			want := []string{"web1: cpu_percent > 90 for 2m [error] ops@example.com", "web1: cpu_percent > 90 for 2m recovered [info] ops@example.com"}
			if got := e.alerts(t); !slices.Equal(got, want) {
				t.Errorf("alerts %q, want %q", got, want)
			}
			ctx := context.Background()
			entry, err := e.st.Assets.Pulses.Get(ctx, vigil.Token("host:web1"))
			if err != nil {
				t.Fatalf("heartbeat host:web1 not stored: %v", err)
			}
			var rec vigil.Record
			if err := json.Unmarshal(entry.Value(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.NextIn != vigil.Seconds(2*time.Minute) || rec.Owner == nil || rec.Owner.Target != "ops@example.com" || !strings.HasPrefix(rec.Message, "cpu 10%, memory ") {
				t.Errorf("heartbeat %+v, want next_in 2m, the owner, a summary", rec)
			}
		})
	}
}

// The offline buffer keeps what the agent could not send while the NATS
// server was down, across an agent restart, and replays it in order, once,
// when the server is back on the same store.
func TestOfflineBufferAcrossServerRestart(t *testing.T) {
	e := newEnv(t, "nats", 10, 95, 95, 95, 95)
	e.cycle(t) // stored live
	e.st.StopNATS()
	bustest.Eventually(t, func() error {
		if e.send.(*transport.NATS).Conn().IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	e.cycle(t)
	e.cycle(t)
	e.open(t)  // the agent restarts while the server is down
	e.cycle(t) // the cpu rule fires here, offline
	if n, _ := e.agent.Buffered(); n != 4 {
		t.Fatalf("buffered %d items, want 3 stats and 1 alert", n)
	}
	e.st.RestartNATS()
	bustest.Eventually(t, func() error {
		if !e.send.(*transport.NATS).Conn().IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
	// Wait for ingest's intake to be back too before the replay.
	bustest.Eventually(t, func() error {
		if r := e.send.Check(context.Background(), "web1"); !r.OK() {
			return fmt.Errorf("check: %+v", r)
		}
		return nil
	})
	e.cycle(t) // replays, then sends live
	if n, dropped := e.agent.Buffered(); n != 0 || dropped != 0 {
		t.Errorf("after replay: %d buffered, %d dropped; want 0 and 0", n, dropped)
	}
	if got := e.stats(t); !slices.Equal(got, times(t0, 5)) {
		t.Errorf("stored stats at %v, want all 5 in order", got)
	}
	if got := e.alerts(t); !slices.Equal(got, []string{"web1: cpu_percent > 90 for 2m [error] ops@example.com"}) {
		t.Errorf("alerts %q, want the one fired offline", got)
	}
	// A second replay of the same items (a crash before the head was
	// saved) is deduplicated by the ids.
	e.cycle(t)
	if got := e.stats(t); len(got) != 6 {
		t.Errorf("stored %d stats after one more cycle, want 6", len(got))
	}
}

// The buffer's size limit drops the oldest items and counts them.
func TestOfflineBufferLimit(t *testing.T) {
	e := newEnv(t, "nats")
	e.cfg.Buffer.MaxBytes = 1 << 16
	e.cfg.Processes = false
	e.cfg.Thresholds = nil // only stats: 60 cycles, 60 items
	e.open(t)
	e.st.StopNATS()
	bustest.Eventually(t, func() error {
		if e.send.(*transport.NATS).Conn().IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	for range 60 {
		e.cycle(t)
	}
	n, dropped := e.agent.Buffered()
	if dropped == 0 || n+int(dropped) != 60 {
		t.Errorf("buffered %d, dropped %d: want some dropped, 60 in all", n, dropped)
	}
}
