package watchdog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// wait is the generous bound on event waits; tests never sleep to synchronise.
const wait = 20 * time.Second

type replica struct {
	role *watchdog.Role
	nc   *nats.Conn
	stop context.CancelFunc
	done chan error
}

// startReplica runs a watchdog on its own connection.
func startReplica(t *testing.T, s *bustest.Server, name string, mod func(*watchdog.Config)) *replica {
	t.Helper()
	nc := s.Conn(t)
	js, err := bus.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	a, err := bus.Provision(context.Background(), js, bus.Config{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := watchdog.DefaultConfig()
	cfg.Instance = name
	if mod != nil {
		mod(&cfg)
	}
	r, err := watchdog.New(cfg, watchdog.Deps{Conn: nc, Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rep := &replica{role: r, nc: nc, stop: cancel, done: make(chan error, 1)}
	go func() { rep.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-rep.done; err != nil {
			t.Error(err)
		}
	})
	return rep
}

// crash makes the replica vanish without releasing its lease, like kill -9.
func (r *replica) crash() {
	r.nc.Close()
	r.stop()
	if err := <-r.done; err != nil {
		panic(err)
	}
	r.done <- nil // for Cleanup
}

// alerts collects every alert stored in VIGIL_ALERTS.
type alerts struct {
	mu     sync.Mutex
	all    []vigil.Alert
	change chan struct{}
}

func watchAlerts(t *testing.T, js jetstream.JetStream) *alerts {
	t.Helper()
	al := &alerts{change: make(chan struct{}, 1)}
	c, err := js.OrderedConsumer(context.Background(), vigil.StreamAlerts, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		var a vigil.Alert
		if err := json.Unmarshal(m.Data(), &a); err != nil {
			t.Errorf("bad alert %s: %v", m.Data(), err)
		}
		al.mu.Lock()
		al.all = append(al.all, a)
		al.mu.Unlock()
		select {
		case al.change <- struct{}{}:
		default:
		}
	}, jetstream.PullExpiry(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return al
}

func (al *alerts) of(kind vigil.AlertKind, service string) []vigil.Alert {
	al.mu.Lock()
	defer al.mu.Unlock()
	var out []vigil.Alert
	for _, a := range al.all {
		if a.Kind == kind && (service == "*" || a.Service == service) {
			out = append(out, a)
		}
	}
	return out
}

// waitN waits until at least n alerts of kind for service are stored.
func (al *alerts) waitN(t *testing.T, kind vigil.AlertKind, service string, n int) []vigil.Alert {
	t.Helper()
	deadline := time.After(wait)
	for {
		if got := al.of(kind, service); len(got) >= n {
			return got
		}
		select {
		case <-al.change:
		case <-deadline:
			t.Fatalf("waited %v for %d %s alert(s) of %q; have %d", wait, n, kind, service, len(al.of(kind, service)))
		}
	}
}

func pulse(t *testing.T, js jetstream.JetStream, name string, at time.Time, nextIn time.Duration) uint64 {
	t.Helper()
	g := vigil.Seconds(0)
	b, _ := json.Marshal(vigil.Record{
		Op: vigil.OpPulse, At: at,
		Pulse: vigil.Pulse{Service: name, NextIn: vigil.Seconds(nextIn), Grace: &g, Owner: &vigil.Owner{Type: "mail", Target: "ops@example.com"}},
	})
	ack, err := js.Publish(context.Background(), vigil.PulseSubject(name), b)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func cancelService(t *testing.T, js jetstream.JetStream, name string, at time.Time, nextIn time.Duration) {
	t.Helper()
	b, _ := json.Marshal(vigil.Record{
		Op: vigil.OpCancel, At: at, CancelledAt: time.Now(),
		Pulse: vigil.Pulse{Service: name, NextIn: vigil.Seconds(nextIn)},
	})
	if _, err := js.Publish(context.Background(), vigil.PulseSubject(name), b); err != nil {
		t.Fatal(err)
	}
}

func verdict(t *testing.T, kv jetstream.KeyValue, name string) *vigil.Verdict {
	t.Helper()
	e, err := kv.Get(context.Background(), vigil.Token(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var v vigil.Verdict
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// waitVerdict waits until name's verdict satisfies ok.
func waitVerdict(t *testing.T, kv jetstream.KeyValue, name string, ok func(*vigil.Verdict) bool) *vigil.Verdict {
	t.Helper()
	w, err := kv.Watch(context.Background(), vigil.Token(name))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	deadline := time.After(wait)
	for {
		if v := verdict(t, kv, name); v != nil && ok(v) {
			return v
		}
		select {
		case <-w.Updates():
		case <-deadline:
			t.Fatalf("waited %v for the verdict of %q; last %+v", wait, name, verdict(t, kv, name))
		}
	}
}

func waitLeader(t *testing.T, r *replica) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	for !r.role.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("replica never became leader")
		}
		<-tk.C
	}
}

func setAlive(t *testing.T, a *bus.Assets, at time.Time) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"instance": "previous", "at": at})
	if _, err := a.Runtime.Put(context.Background(), vigil.KeyWatchdogAlive, b); err != nil {
		t.Fatal(err)
	}
}

func TestDownOnceThenRecoveredOnce(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	al := watchAlerts(t, a.JS)
	startReplica(t, s, "w1", nil)

	const name = "db.backup nightly"
	seq := pulse(t, a.JS, name, time.Now(), time.Second)
	down := al.waitN(t, vigil.AlertDown, name, 1)[0]
	if down.DownSeq != seq || down.Owner == nil || down.Owner.Target != "ops@example.com" {
		t.Errorf("down alert = %+v, want down_seq %d and the owner", down, seq)
	}
	if late := down.At.Sub(down.Deadline); late < 0 || late > 2*time.Second {
		t.Errorf("down alert stored %v after deadline+grace, want within [0, 2s]", late)
	}
	v := waitVerdict(t, a.Services, name, func(v *vigil.Verdict) bool { return v.Status == vigil.StatusDown })
	if v.DownSeq != seq {
		t.Errorf("verdict down_seq = %d, want %d", v.DownSeq, seq)
	}

	pulse(t, a.JS, name, time.Now(), time.Hour)
	rec := al.waitN(t, vigil.AlertRecovered, name, 1)[0]
	if rec.DownSeq != seq || rec.DownSince.IsZero() {
		t.Errorf("recovered alert = %+v, want down_seq %d and down_since", rec, seq)
	}
	waitVerdict(t, a.Services, name, func(v *vigil.Verdict) bool { return v.Status == vigil.StatusUp && v.DownSeq == 0 })
	st, err := a.Alerts.Info(context.Background(), jetstream.WithSubjectFilter("vigil.alert.*."+vigil.Token(name)))
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Msgs != 2 {
		t.Errorf("alerts stored for %q = %d, want exactly 2 (down, recovered)", name, st.State.Msgs)
	}
}

func TestCancelledServiceRaisesNothing(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	al := watchAlerts(t, a.JS)
	startReplica(t, s, "w1", nil)

	now := time.Now()
	pulse(t, a.JS, "cancelled", now, time.Second)
	cancelService(t, a.JS, "cancelled", now, time.Second)
	waitVerdict(t, a.Services, "cancelled", func(v *vigil.Verdict) bool { return v.Status == vigil.StatusCancelled })
	// A witness with a later deadline: once it is down, the cancelled one's
	// deadline has long been judged.
	pulse(t, a.JS, "witness", now, 1500*time.Millisecond)
	al.waitN(t, vigil.AlertDown, "witness", 1)
	if got := al.of(vigil.AlertDown, "cancelled"); len(got) != 0 {
		t.Errorf("cancelled service raised %d down alerts", len(got))
	}
}

func TestTakeoverAfterLeaderCrash(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	al := watchAlerts(t, a.JS)
	w1 := startReplica(t, s, "w1", nil)
	waitLeader(t, w1)
	w2 := startReplica(t, s, "w2", nil)

	const n = 50
	for i := range n {
		pulse(t, a.JS, fmt.Sprintf("svc-%d", i), time.Now(), 2*time.Second)
	}
	crashed := time.Now()
	w1.crash()
	waitLeader(t, w2)
	t.Logf("standby took over %v after the leader crashed", time.Since(crashed).Round(time.Millisecond))
	al.waitN(t, vigil.AlertDown, "*", n)
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		waitVerdict(t, a.Services, name, func(v *vigil.Verdict) bool { return v.Status == vigil.StatusDown })
		if got := len(al.of(vigil.AlertDown, name)); got != 1 {
			t.Errorf("%s: %d down alerts, want exactly 1", name, got)
		}
	}
}

func TestTwoReplicasOneAlertPerOutage(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	al := watchAlerts(t, a.JS)
	startReplica(t, s, "w1", nil)
	startReplica(t, s, "w2", nil)
	const n = 30
	for i := range n {
		pulse(t, a.JS, fmt.Sprintf("svc-%d", i), time.Now(), time.Second)
	}
	al.waitN(t, vigil.AlertDown, "*", n)
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		waitVerdict(t, a.Services, name, func(v *vigil.Verdict) bool { return v.Status == vigil.StatusDown })
	}
	if got := len(al.of(vigil.AlertDown, "*")); got != n {
		t.Errorf("down alerts = %d, want %d (one per outage)", got, n)
	}
}

// TestCatchUpBeforeJudging: while no watchdog ran, one service kept pulsing
// (its newest pulse is fresh) and one fell silent. The new leader must report
// only the silent one.
func TestCatchUpBeforeJudging(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	al := watchAlerts(t, a.JS)
	now := time.Now()
	setAlive(t, a, now.Add(-time.Second)) // the previous leader died a second ago: no gap
	for i := range 20 {
		pulse(t, a.JS, "kept-pulsing", now.Add(time.Duration(i-30)*time.Second), 5*time.Second)
	}
	pulse(t, a.JS, "kept-pulsing", now, time.Minute)
	pulse(t, a.JS, "fell-silent", now.Add(-10*time.Second), 5*time.Second)

	startReplica(t, s, "w2", nil)
	al.waitN(t, vigil.AlertDown, "fell-silent", 1)
	waitVerdict(t, a.Services, "fell-silent", func(v *vigil.Verdict) bool { return v.Status == vigil.StatusDown })
	waitVerdict(t, a.Services, "kept-pulsing", func(v *vigil.Verdict) bool { return v.Status == vigil.StatusUp })
	if got := al.of(vigil.AlertDown, "kept-pulsing"); len(got) != 0 {
		t.Errorf("kept-pulsing got %d down alerts, want none", len(got))
	}
}

func TestMonitoringGap(t *testing.T) {
	for _, policy := range []string{watchdog.GapAlert, watchdog.GapEach} {
		t.Run(policy, func(t *testing.T) {
			s := bustest.New(t)
			a := s.Provision(t)
			al := watchAlerts(t, a.JS)
			now := time.Now()
			setAlive(t, a, now.Add(-time.Minute)) // vigil stopped a minute ago
			pulse(t, a.JS, "a", now.Add(-50*time.Second), time.Second)
			pulse(t, a.JS, "b", now.Add(-40*time.Second), time.Second)
			pulse(t, a.JS, "fresh", now, time.Hour)

			startReplica(t, s, "w1", func(c *watchdog.Config) { c.GapPolicy = policy })
			if policy == watchdog.GapEach {
				al.waitN(t, vigil.AlertDown, "a", 1)
				al.waitN(t, vigil.AlertDown, "b", 1)
				if g := al.of(vigil.AlertGap, "*"); len(g) != 0 {
					t.Errorf("gap alerts with policy each = %d, want 0", len(g))
				}
				return
			}
			gap := al.waitN(t, vigil.AlertGap, "*", 1)[0]
			if len(gap.Services) != 2 || gap.GapFrom.IsZero() || gap.GapTo.Before(gap.GapFrom) {
				t.Errorf("gap alert = %+v, want services [a b] and a window", gap)
			}
			// Each gets a fresh period (1 s here) and is then judged alone.
			da := al.waitN(t, vigil.AlertDown, "a", 1)[0]
			al.waitN(t, vigil.AlertDown, "b", 1)
			if !da.Deadline.After(gap.GapTo) {
				t.Errorf("a's down deadline %v is not after the gap end %v", da.Deadline, gap.GapTo)
			}
			if got := al.of(vigil.AlertDown, "fresh"); len(got) != 0 {
				t.Errorf("fresh service reported down")
			}
		})
	}
}
