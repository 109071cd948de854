package watchdog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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

// BenchmarkDetection measures detection lateness: the time from a service's
// deadline + grace to its down alert being stored in VIGIL_ALERTS (stream
// timestamp). services pulse every 10 s with next_in 10 s and grace 2 s,
// spread evenly over the period; after one full period 1% of them fall
// silent while the rest keep pulsing for two more periods. It reports
// p50/p99/max lateness, missed deaths and false deaths (both must be 0).
//
//	go test -run '^$' -bench 'Detection/services=100000' -benchtime 1x -timeout 20m ./services/watchdog/
func BenchmarkDetection(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for range b.N {
				runDetection(b, n, 10*time.Second, 2*time.Second, false)
			}
		})
	}
}

// BenchmarkMassExpiry: every service pulses once with the same deadline and
// then all fall silent; reports when the last down alert was stored relative
// to the shared deadline + grace (goal for 100,000: all within 3 s).
//
//	go test -run '^$' -bench 'MassExpiry' -benchtime 1x -timeout 20m ./services/watchdog/
func BenchmarkMassExpiry(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for range b.N {
				runDetection(b, n, 5*time.Second, 0, true)
			}
		})
	}
}

func runDetection(b *testing.B, n int, period, grace time.Duration, mass bool) {
	s := bustest.New(b)
	a := s.Provision(b)
	nc := s.Conn(b)
	cfg := watchdog.DefaultConfig()
	cfg.Instance = "bench"
	r, err := watchdog.New(cfg, watchdog.Deps{Conn: nc, Assets: a, Log: bustest.Logger(b), Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	// Collect down alerts with their stored time.
	var mu sync.Mutex
	stored := map[string]time.Time{}
	deadline := map[string]time.Time{}
	dups := 0
	oc, err := a.JS.OrderedConsumer(ctx, vigil.StreamAlerts, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"vigil.alert.down.>"}})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		var al vigil.Alert
		_ = json.Unmarshal(m.Data(), &al)
		md, _ := m.Metadata()
		mu.Lock()
		if _, ok := stored[al.Service]; ok {
			dups++
		}
		stored[al.Service], deadline[al.Service] = md.Timestamp, al.Deadline
		mu.Unlock()
	}, jetstream.PullExpiry(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()

	pub, _ := bus.NewJetStream(s.Conn(b))
	g := vigil.Seconds(grace)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%06d", i)
	}
	send := func(i int) {
		body, _ := json.Marshal(vigil.Record{
			Op: vigil.OpPulse, At: time.Now().UTC(),
			Pulse: vigil.Pulse{Service: names[i], NextIn: vigil.Seconds(period), Grace: &g},
		})
		for {
			_, err := pub.PublishMsgAsync(&nats.Msg{Subject: vigil.PulseSubject(names[i]), Data: body}, jetstream.WithStallWait(time.Second))
			if err == nil {
				return
			}
		}
	}
	dead := func(i int) bool { return mass || i%100 == 7 }
	b.ResetTimer()
	const slots = 100
	tick := period / slots
	start := time.Now()
	cycles := 3
	if mass {
		for i := range n {
			send(i)
		}
		<-pub.PublishAsyncComplete()
		cycles = 0
	}
	for c := range cycles {
		for slot := range slots {
			time.Sleep(time.Until(start.Add(time.Duration(c)*period + time.Duration(slot)*tick)))
			for i := slot; i < n; i += slots {
				if c == 0 || !dead(i) {
					send(i)
				}
			}
		}
	}
	<-pub.PublishAsyncComplete()
	wantDead := 0
	for i := range n {
		if dead(i) {
			wantDead++
		}
	}
	// Wait for every planned death, bounded.
	limit := time.Now().Add(period + grace + 30*time.Second)
	for time.Now().Before(limit) {
		mu.Lock()
		got := len(stored)
		mu.Unlock()
		if got >= wantDead {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var late []float64
	falseDeaths, missed := 0, 0
	for i, name := range names {
		at, ok := stored[name]
		switch {
		case dead(i) && !ok:
			missed++
		case !dead(i) && ok:
			falseDeaths++
		case ok:
			late = append(late, at.Sub(deadline[name]).Seconds())
		}
	}
	slices.Sort(late)
	q := func(p float64) float64 {
		if len(late) == 0 {
			return 0
		}
		return late[min(len(late)-1, int(p*float64(len(late))))]
	}
	b.ReportMetric(q(0.5)*1000, "p50-ms")
	b.ReportMetric(q(0.99)*1000, "p99-ms")
	b.ReportMetric(q(1)*1000, "max-ms")
	b.ReportMetric(float64(missed), "missed")
	b.ReportMetric(float64(falseDeaths), "false")
	b.ReportMetric(float64(dups), "dups")
	b.Logf("services=%d dead=%d detected=%d missed=%d false=%d dups=%d p50=%.0fms p99=%.0fms max=%.0fms",
		n, wantDead, len(late), missed, falseDeaths, dups, q(.5)*1000, q(.99)*1000, q(1)*1000)
}
