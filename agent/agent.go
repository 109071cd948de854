// Package agent is vigil's host agent (the vigil-agent binary): every
// interval it collects the host's stats (package collect), sends them to
// vigil (package transport), pulses the host's own service so a dead host
// raises a down alert through the normal pipeline, evaluates threshold rules
// (package threshold) into alerts on a change of state, and keeps what it
// could not send in an on-disk buffer (package buffer) that it replays, in
// order, once the server answers again.
//
// The agent runs on many hosts, so it stays small: it links neither the
// NATS server nor the notifier's senders (cmd/vigil-agent tests that).
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/buffer"
	"github.com/vigil-monitor/vigil/agent/config"
	"github.com/vigil-monitor/vigil/agent/threshold"
	"github.com/vigil-monitor/vigil/agent/transport"
)

// Collector reads one snapshot of host id at now (collect.Collector does).
type Collector interface {
	Collect(ctx context.Context, id string, now time.Time) (*vigil.HostStats, error)
}

// Deps are what the agent works with: where it sends, what it collects
// with, a logger and a clock (nil means time.Now).
type Deps struct {
	Sender    transport.Sender
	Collector Collector
	Log       *slog.Logger
	Now       func() time.Time
}

// Agent is a running agent for one host.
type Agent struct {
	cfg    config.Config
	id     string
	sender transport.Sender
	coll   Collector
	log    *slog.Logger
	now    func() time.Time
	queue  *buffer.Queue
	rules  []threshold.Rule
	states map[string]threshold.State
}

// The files of the state directory the agent owns besides the system id.
const (
	bufferDir      = "buffer"
	thresholdsFile = "thresholds.json"
)

// New returns the agent of host id: it opens the offline buffer in the
// state directory and reads the saved threshold states. Errors come from an
// invalid configuration or the file system.
func New(cfg config.Config, id string, deps Deps) (*Agent, error) {
	if deps.Sender == nil || deps.Collector == nil {
		return nil, errors.New("agent: a sender and a collector are required")
	}
	rules, err := cfg.Rules()
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{cfg: cfg, id: id, sender: deps.Sender, coll: deps.Collector, log: deps.Log, now: deps.Now, rules: rules, states: map[string]threshold.State{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.queue, err = buffer.Open(filepath.Join(cfg.StateDir, bufferDir), buffer.Options{MaxBytes: cfg.Buffer.MaxBytes, MaxAge: cfg.Buffer.MaxAge, Now: a.now})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, thresholdsFile)); err == nil {
		if err := json.Unmarshal(b, &a.states); err != nil {
			a.log.Warn("ignoring unreadable threshold states", "file", thresholdsFile, "err", err)
			a.states = map[string]threshold.State{}
		}
	}
	if n := a.queue.Len(); n > 0 {
		a.log.Info("offline buffer holds items from an earlier run", "items", n, "bytes", a.queue.Bytes())
	}
	return a, nil
}

// Close closes the offline buffer.
func (a *Agent) Close() error { return a.queue.Close() }

// Buffered returns the number of items waiting in the offline buffer and
// how many were dropped so far.
func (a *Agent) Buffered() (int, uint64) { return a.queue.Len(), a.queue.Dropped() }

// Run runs a cycle at once and then every interval until ctx ends, and
// returns nil then. A failing cycle is logged, never fatal: an unreachable
// server only fills the buffer.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent running", "system_id", a.id, "interval", a.cfg.Interval, "transport", a.cfg.Transport,
		"pulse", a.cfg.Pulse.Enabled, "thresholds", len(a.rules))
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		if err := a.Cycle(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("cycle failed", "err", err)
		}
		// The agent sleeps most of the interval: hand the cycle's garbage
		// (the process walk reads a few MB of /proc) back to the OS now
		// rather than keep it resident until the next cycle. One extra GC
		// per interval costs about a millisecond.
		debug.FreeOSMemory()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Cycle runs one interval's work: collect a snapshot; replay the buffer
// (oldest first, stopping at the first failure); send the snapshot and any
// threshold alerts, or buffer them behind the items still waiting so the
// order holds; then pulse. A message the server rejects for good is logged
// and dropped. It returns an error only when there was nothing to send.
func (a *Agent) Cycle(ctx context.Context) error {
	now := a.now()
	s, err := a.coll.Collect(ctx, a.id, now)
	if s == nil {
		return fmt.Errorf("collect: %w", err)
	}
	if err != nil {
		a.log.Warn("partial snapshot", "err", err)
	}
	s.Interval = vigil.Seconds(a.cfg.Interval)
	if !a.cfg.Processes {
		s.Processes = nil
	}
	items := []buffer.Item{}
	if it, err := a.statsItem(s, now); err == nil {
		items = append(items, it)
	} else {
		a.log.Error("cannot encode snapshot", "err", err)
	}
	items = append(items, a.thresholds(s, now)...)

	sent, replayErr := a.replay(ctx)
	if sent > 0 {
		a.log.Info("offline buffer replayed", "sent", sent, "left", a.queue.Len(), "dropped_total", a.queue.Dropped())
	}
	for _, it := range items {
		a.deliver(ctx, it, replayErr != nil)
	}
	if a.cfg.Pulse.Enabled {
		a.pulse(ctx, s, now)
	}
	return nil
}

// replay sends the buffered items; rejected ones are dropped.
func (a *Agent) replay(ctx context.Context) (int, error) {
	if a.queue.Len() == 0 {
		return 0, nil
	}
	return a.queue.Replay(ctx, func(ctx context.Context, it buffer.Item) error {
		err := a.sender.Send(ctx, it)
		if transport.IsRejected(err) {
			a.log.Error("buffered item rejected by the server, dropped", "kind", it.Kind, "id", it.ID, "err", err)
			return nil
		}
		return err
	})
}

// deliver sends it, or buffers it when the buffer must keep the order or
// the send failed for now.
func (a *Agent) deliver(ctx context.Context, it buffer.Item, behind bool) {
	if !behind {
		err := a.sender.Send(ctx, it)
		switch {
		case err == nil:
			return
		case transport.IsRejected(err):
			a.log.Error("rejected by the server, dropped", "kind", it.Kind, "id", it.ID, "err", err)
			return
		}
		a.log.Warn("server unreachable, buffering", "kind", it.Kind, "err", err)
	}
	if err := a.queue.Append(it); err != nil {
		a.log.Error("cannot buffer", "kind", it.Kind, "id", it.ID, "err", err)
	}
}

// pulse sends the host's own heartbeat. A pulse is never buffered: ingest
// stamps a pulse with its arrival time, so a replayed one would only repeat
// what the next live pulse says.
func (a *Agent) pulse(ctx context.Context, s *vigil.HostStats, now time.Time) {
	p := vigil.Pulse{
		Service: a.cfg.PulseService(a.id),
		NextIn:  vigil.Seconds(a.cfg.PulseNextIn()),
		Host:    s.Hostname,
		Message: summary(s),
	}
	if a.cfg.Pulse.Grace > 0 {
		g := vigil.Seconds(a.cfg.Pulse.Grace)
		p.Grace = &g
	}
	if a.cfg.Owner.Type != "" {
		o := a.cfg.Owner
		p.Owner = &o
	}
	b, err := json.Marshal(p)
	if err != nil {
		a.log.Error("cannot encode pulse", "err", err)
		return
	}
	it := buffer.Item{Kind: transport.KindPulse, ID: "pulse:" + vigil.Token(a.id) + ":" + stamp(now), At: now, Body: b}
	if err := a.sender.Send(ctx, it); err != nil {
		a.log.Warn("pulse not sent", "service", p.Service, "err", err)
	}
}

func (a *Agent) statsItem(s *vigil.HostStats, now time.Time) (buffer.Item, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return buffer.Item{}, err
	}
	return buffer.Item{Kind: transport.KindStats, ID: "stats:" + vigil.Token(a.id) + ":" + stamp(now), Key: a.id, At: now, Body: b}, nil
}

// thresholds steps every rule with the snapshot and returns an alert item
// for each rule that fired or recovered, saving the states when any
// changed. A rule whose metric the snapshot lacks (a disk not mounted) is
// left as it was.
func (a *Agent) thresholds(s *vigil.HostStats, now time.Time) []buffer.Item {
	if len(a.rules) == 0 {
		return nil
	}
	var items []buffer.Item
	known := map[string]bool{}
	for _, r := range a.rules {
		known[r.Name] = true
		v, ok := s.Value(r.Metric)
		if !ok {
			continue
		}
		before := a.states[r.Name]
		st, change := r.Step(before, v, now)
		a.states[r.Name] = st
		if change == threshold.None {
			continue
		}
		m := a.alertFor(r, change, before, st, now)
		b, err := json.Marshal(m)
		if err != nil {
			continue
		}
		kind := "fired"
		if change == threshold.Recovered {
			kind = "recovered"
		}
		firedAt := st.FiredAt
		a.log.Info("threshold "+kind, "rule", r.Name, "value", v)
		items = append(items, buffer.Item{
			Kind: transport.KindAlert,
			ID:   "threshold:" + vigil.Token(a.id) + ":" + ruleKey(r.Name) + ":" + stamp(firedAt) + ":" + kind,
			At:   now, Body: b,
		})
	}
	for name := range a.states {
		if !known[name] {
			delete(a.states, name)
		}
	}
	a.saveStates()
	return items
}

// alertFor writes the manual alert of a rule that fired or recovered.
func (a *Agent) alertFor(r threshold.Rule, change threshold.Change, before, st threshold.State, now time.Time) vigil.ManualAlert {
	m := vigil.ManualAlert{Service: a.cfg.PulseService(a.id), Level: r.Level}
	if a.cfg.Owner.Type != "" {
		o := a.cfg.Owner
		m.Owner = &o
	}
	val := strconv.FormatFloat(st.Value, 'f', -1, 64)
	if change == threshold.Fired {
		m.Title = fmt.Sprintf("%s: %s", a.id, r.Name)
		m.Message = fmt.Sprintf("%s is %s on %s (rule %s), since %s.", r.Metric, val, a.id, r.Expr(), now.Add(-r.For).UTC().Format(time.RFC3339))
	} else {
		m.Level = vigil.LevelInfo
		m.Title = fmt.Sprintf("%s: %s recovered", a.id, r.Name)
		m.Message = fmt.Sprintf("%s is %s on %s, back within rule %s; it fired at %s, %s ago.", r.Metric, val, a.id, r.Expr(),
			before.FiredAt.UTC().Format(time.RFC3339), now.Sub(before.FiredAt).Round(time.Second))
	}
	m.Title = clip(m.Title, vigil.MaxTitleLen)
	m.Message = clip(m.Message, vigil.MaxMessageLen)
	return m
}

func (a *Agent) saveStates() {
	b, err := json.Marshal(a.states)
	if err != nil {
		return
	}
	path := filepath.Join(a.cfg.StateDir, thresholdsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		a.log.Warn("cannot save threshold states", "err", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		a.log.Warn("cannot save threshold states", "err", err)
	}
}

// summary is the pulse message: "cpu 12%, memory 40%, disk / 55%".
func summary(s *vigil.HostStats) string {
	h := s.Summary()
	var b strings.Builder
	fmt.Fprintf(&b, "cpu %.0f%%, memory %.0f%%", h.CPUPercent, h.MemoryPercent)
	if h.DiskMount != "" {
		fmt.Fprintf(&b, ", disk %s %.0f%%", h.DiskMount, h.DiskPercent)
	}
	if s.Load != nil {
		fmt.Fprintf(&b, ", load %.2f", s.Load.Load1)
	}
	return clip(b.String(), vigil.MaxMessageLen)
}

// stamp is a compact, ordered time for message ids.
func stamp(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 36) }

// ruleKey is a short, subject-safe key of a rule name.
func ruleKey(name string) string {
	sum := sha256.Sum256([]byte(name))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
