package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// signal is a channel.Channel that reports the instant of each Send.
type signal struct{ at chan time.Time }

func (s signal) Type() string { return "sig" }

func (s signal) Send(context.Context, string, channel.Message) error {
	s.at <- time.Now()
	return nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkIdleLatency measures, on an idle notifier, the time from
// storing an alert in VIGIL_ALERTS (before the publish) to the channel's
// Send being called: fan-out, job store, worker pull, delivered-mark
// check. One alert at a time; reports p50 and p99 (goal p99 ≤ 100 ms).
//
//	go test -run '^$' -bench IdleLatency -benchtime 500x ./services/notifier/
func BenchmarkIdleLatency(b *testing.B) {
	sig := signal{at: make(chan time.Time, 1)}
	h := start(b, testConfig(sig), 1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		a := downAlert(fmt.Sprintf("svc-%d", i), uint64(i+1))
		a.Owner = &vigil.Owner{Type: "sig", Target: "t"}
		t0 := time.Now()
		h.alert(a)
		select {
		case t1 := <-sig.at:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatalf("alert %d not delivered in 10 s", i)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// raise stores n down alerts owned by mail targets (50 distinct ones) with
// async publishes.
func (h *harness) raise(tb testing.TB, n int) {
	tb.Helper()
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		a := downAlert(fmt.Sprintf("svc-%d", i), uint64(i+1))
		a.Owner = &vigil.Owner{Type: "mail", Target: fmt.Sprintf("u%d@example.com", i%50)}
		data, err := json.Marshal(a)
		if err != nil {
			tb.Fatal(err)
		}
		m := &nats.Msg{Subject: vigil.AlertSubject(a.Kind, a.Service), Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, a.ID)
		f, err := h.assets.JS.PublishMsgAsync(m)
		if err != nil {
			tb.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatal(err)
		}
	}
}

// BenchmarkMailThroughput measures mail deliveries per second end to end
// through the queue: b.N alerts stored at once, each fanned out into a
// mail job and delivered to the in-process SMTP server over reused
// sessions (8 SMTP sessions, 16 workers, one notifier). Goal ≥ 1,000/s.
//
//	go test -run '^$' -bench MailThroughput -benchtime 5000x ./services/notifier/
func BenchmarkMailThroughput(b *testing.B) {
	srv := smtptest.New(b, smtptest.WithDiscard())
	cfg := testConfig(newMail(b, srv, 8))
	h := start(b, cfg, 1)
	b.ResetTimer()
	t0 := time.Now()
	h.raise(b, b.N)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := srv.WaitContext(ctx, b.N); err != nil {
		b.Fatal(err)
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "mails/s")
	b.ReportMetric(float64(srv.Conns()), "smtp-conns")
}

// BenchmarkMailOutage stores 10,000 alerts (mail owners), takes the SMTP
// server down for 60 s once half of them are delivered, brings it back and
// waits until every alert's mail has arrived. It reports the mails
// delivered, the duplicates (same Message-ID twice; goal 0), the seconds
// from the server's return to the last mail, and the dead letters (goal
// 0). The back-off is shortened for it: 1 s doubling up to 5 s, for 10 min.
// It takes over a minute: run it alone, once.
//
//	go test -run '^$' -bench MailOutage -benchtime 1x -timeout 15m ./services/notifier/
func BenchmarkMailOutage(b *testing.B) {
	const n = 10_000
	srv := smtptest.New(b)
	cfg := testConfig(newMail(b, srv, 8))
	cfg.Retry = notifier.Retry{Initial: time.Second, Max: 5 * time.Second, For: 10 * time.Minute}
	h := start(b, cfg, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	b.ResetTimer()
	h.raise(b, n)
	if _, err := srv.WaitContext(ctx, n/2); err != nil {
		b.Fatal(err)
	}
	srv.Down()
	b.Logf("SMTP down after %d mails", srv.Received())
	time.Sleep(60 * time.Second) // the outage itself, not a synchronisation
	srv.Up()
	up := time.Now()
	var distinct, total int
	for {
		seen := map[string]bool{}
		msgs := srv.Messages()
		for _, m := range msgs {
			seen[m.Header.Get("Message-Id")] = true
		}
		distinct, total = len(seen), len(msgs)
		if distinct >= n {
			break
		}
		if _, err := srv.WaitContext(ctx, total+1); err != nil {
			b.Fatalf("%d of %d delivered: %v", distinct, n, err)
		}
	}
	after := time.Since(up)
	b.StopTimer()
	dead := h.deliveries(url.Values{"status": {"dead"}, "limit": {"1000"}})
	b.ReportMetric(float64(distinct), "delivered")
	b.ReportMetric(float64(total-distinct), "duplicates")
	b.ReportMetric(after.Seconds(), "s-after-up")
	b.ReportMetric(float64(len(dead)), "dead")
}
