package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// runQueries fills VIGIL_EVENTS with Scale.Events events spread over the
// last 24 h (1,000 services) and the pulses bucket with
// Scale.QueryServices services (a tenth of them overdue), restarts the
// server with the api role alone, reports how long the role takes to catch
// up, and times the service and event queries over loopback HTTP.
func runQueries(ctx context.Context, e *env, r *Result) error {
	sc := e.sc
	dir := filepath.Join(e.tmp, "queries")
	st, err := startStack(ctx, dir, stackConfig{})
	if err != nil {
		return err
	}
	e.logf("queries: storing %d events and %d services", sc.Events, sc.QueryServices)
	t0 := time.Now()
	if err := fillEvents(ctx, st.assets.JS, sc.Events); err != nil {
		_ = st.stop()
		return err
	}
	r.add("events_stored", float64(sc.Events)/time.Since(t0).Seconds(), "events/s").Note = "async publish straight to VIGIL_EVENTS"
	if err := fillPulses(ctx, st.assets.JS, sc.QueryServices); err != nil {
		_ = st.stop()
		return err
	}
	if err := st.stop(); err != nil {
		return err
	}

	e.logf("queries: restarting with the api role")
	t0 = time.Now()
	st, err = startStack(ctx, dir, stackConfig{api: true})
	if err != nil {
		return err
	}
	defer func() { _ = st.stop() }()
	c := newClient(4)
	defer c.CloseIdleConnections()
	if err := waitOK(ctx, c, st.url+"/v1/services?limit=1", 5*time.Minute); err != nil {
		return err
	}
	r.add("service_view_catch_up", since(t0), "ms").Note = fmt.Sprintf("%d services", sc.QueryServices)
	if err := waitOK(ctx, c, st.url+"/v1/events?limit=1", 5*time.Minute); err != nil {
		return err
	}
	r.add("event_index_catch_up", since(t0), "ms").Note = fmt.Sprintf("%d events, from start", sc.Events)

	for _, q := range []struct {
		name, path, goal string
		scan             bool
	}{
		{"services_first_page", "/v1/services?limit=100", "p99 ≤ 20 ms", false},
		{"services_down_page", "/v1/services?limit=100&status=down", "p99 ≤ 20 ms", false},
		{"events_first_page", "/v1/events?limit=100", "p99 ≤ 200 ms", false},
		{"events_service_exact", "/v1/events?limit=100&service_exact=svc-42", "p99 ≤ 200 ms", false},
		{"events_service_regex", "/v1/events?limit=100&service=%5Esvc-42%24", "p99 ≤ 200 ms", false},
		{"events_service_level", "/v1/events?limit=100&service_exact=svc-42&level=error", "p99 ≤ 200 ms", false},
		{"events_message_literal_scan", "/v1/events?limit=100&message=upstream%20%22ledger%22", "≤ 1 s", true},
		{"events_message_noliteral_scan", "/v1/events?limit=100&message=%5Cd%7B7%7D", "≤ 1 s", true},
	} {
		n := sc.Queries
		if q.scan {
			n = sc.Scans
		}
		e.logf("queries: %s ×%d", q.name, n)
		ds := make([]time.Duration, 0, n)
		for range n {
			t := time.Now()
			code, err := get(ctx, c, st.url+q.path)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("GET %s = %d", q.path, code)
			}
			ds = append(ds, time.Since(t))
		}
		p := quantiles(ds, 0.5, 0.99)
		r.add(q.name+"_p50", p[0], "ms")
		r.add(q.name+"_p99", p[1], "ms").Goal = q.goal
	}
	return st.stop()
}

func since(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

// fillEvents stores n events of 1,000 services evenly over the last 24 h,
// each with a message of about 100 bytes, with async publishes.
func fillEvents(ctx context.Context, js jetstream.JetStream, n int) error {
	const services = 1000
	now := time.Now().UTC()
	step := 24 * time.Hour / time.Duration(max(n, 1))
	for i := range n {
		svc := "svc-" + strconv.Itoa(i%services)
		b := make([]byte, 0, 220)
		b = append(b, `{"service":"`...)
		b = append(b, svc...)
		b = append(b, `","level":`...)
		b = strconv.AppendInt(b, int64(i/services%5), 10)
		b = append(b, `,"message":"request `...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ` from 10.0.`...)
		b = strconv.AppendInt(b, int64(i%256), 10)
		b = append(b, ` took 1.2 s; upstream \"billing\" answered 503","received":"`...)
		b = now.Add(-24*time.Hour+time.Duration(i)*step).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
		if err := publishAsync(ctx, js, vigil.EventSubject(svc), b); err != nil {
			return err
		}
	}
	return awaitAsync(ctx, js)
}

// fillPulses stores one pulse record for each of n services, a tenth of
// them an hour old (down), the others just now.
func fillPulses(ctx context.Context, js jetstream.JetStream, n int) error {
	now := time.Now().UTC()
	g := vigil.Seconds(30 * time.Second)
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("host-%06d.service %d", (i*7919)%n, i)
	}
	slices.Sort(names)
	for i, name := range names {
		at := now
		if i%10 == 0 {
			at = now.Add(-time.Hour)
		}
		body, err := json.Marshal(vigil.Record{Op: vigil.OpPulse, At: at, Pulse: vigil.Pulse{
			Service: name, NextIn: vigil.Seconds(10 * time.Minute), Grace: &g, Host: "h",
			Owner: &vigil.Owner{Type: vigil.ChannelMail, Target: "ops@example.com"},
		}})
		if err != nil {
			return err
		}
		if err := publishAsync(ctx, js, vigil.PulseSubject(name), body); err != nil {
			return err
		}
	}
	return awaitAsync(ctx, js)
}

// publishAsync publishes data with PublishAsync, waiting and trying again
// while too many publishes are unacknowledged (a busy server).
func publishAsync(ctx context.Context, js jetstream.JetStream, subject string, data []byte) error {
	_, err := publishMsgAsync(ctx, js, &nats.Msg{Subject: subject, Data: data})
	return err
}

// publishMsgAsync is publishAsync for a message with headers; it returns
// the ack's future.
func publishMsgAsync(ctx context.Context, js jetstream.JetStream, m *nats.Msg) (jetstream.PubAckFuture, error) {
	for {
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
		if err == nil || !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return f, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func awaitAsync(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("async publishes not acknowledged within 10 min")
	case <-ctx.Done():
		return ctx.Err()
	}
}
