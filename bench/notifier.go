package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/mail"
)

// runNotifier measures mail deliveries per second through the delivery
// queue to an SMTP server on loopback (Scale.Mails alerts stored at once,
// one target each), and, one alert at a time on the idle notifier, the time
// from storing an alert to the SMTP server seeing its MAIL FROM.
func runNotifier(ctx context.Context, e *env, r *Result) error {
	sink, err := startSMTP(ctx)
	if err != nil {
		return err
	}
	defer sink.close()
	mc := mail.DefaultConfig()
	host, port, _ := net.SplitHostPort(sink.addr)
	mc.Host, mc.TLS, mc.From = host, mail.TLSNone, "vigil <vigil@example.com>"
	mc.Port, _ = strconv.Atoi(port)
	mc.MaxConnections = 8
	ch, err := mail.New(mc)
	if err != nil {
		return err
	}
	defer ch.Close()
	cfg := notifier.DefaultConfig()
	cfg.Channels = append(cfg.Channels, ch)
	st, err := startStack(ctx, e.tmp, stackConfig{notifier: &cfg})
	if err != nil {
		return err
	}
	defer func() { _ = st.stop() }()
	js := st.assets.JS
	// The fan-out consumer exists once Run has started.
	for {
		if _, err := js.Consumer(ctx, vigil.StreamAlerts, notifier.Consumer); err == nil {
			break
		}
		sleep(ctx, 10*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	seq := uint64(0)
	alert := func(target string) *nats.Msg {
		seq++
		now := time.Now().UTC()
		svc := "svc-" + strconv.FormatUint(seq, 10)
		a := vigil.Alert{
			ID: fmt.Sprintf("down:%s:%d", vigil.Token(svc), seq), Kind: vigil.AlertDown, Service: svc,
			Title: svc + " is down", Level: vigil.LevelError, At: now, LastPulse: now.Add(-time.Minute),
			Deadline: now.Add(-time.Second), DownSeq: seq, Host: "bench",
			Owner: &vigil.Owner{Type: vigil.ChannelMail, Target: target},
		}
		data, _ := json.Marshal(a)
		m := &nats.Msg{Subject: vigil.AlertSubject(a.Kind, a.Service), Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, a.ID)
		return m
	}

	// Latency first, on the idle notifier.
	e.logf("notifier: %d alerts one at a time", e.sc.Latency)
	lat := make([]time.Duration, 0, e.sc.Latency)
	for range e.sc.Latency {
		m := alert("ops@example.com")
		t0 := time.Now()
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return err
		}
		select {
		case t1 := <-sink.mail:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("alert %s not mailed within 10 s", m.Header.Get(jetstream.MsgIDHeader))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q := quantiles(lat, 0.5, 0.99)
	r.add("alert_to_smtp_p50", q[0], "ms")
	r.add("alert_to_smtp_p99", q[1], "ms").Goal = "≤ 100 ms"

	e.logf("notifier: %d alerts at once", e.sc.Mails)
	base := sink.delivered.Load()
	t0 := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, e.sc.Mails)
	for i := range e.sc.Mails {
		f, err := publishMsgAsync(ctx, js, alert(fmt.Sprintf("u%d@example.com", i)))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		}
	}
	stored := time.Since(t0)
	limit := time.Now().Add(5 * time.Minute)
	for sink.delivered.Load()-base < int64(e.sc.Mails) {
		if time.Now().After(limit) {
			return fmt.Errorf("%d of %d mails delivered within 5 min", sink.delivered.Load()-base, e.sc.Mails)
		}
		select {
		case <-sink.mail: // drain the arrival signal
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	el := time.Since(t0)
	r.add("mails", float64(e.sc.Mails), "mails").Note = "one alert each, stored at once"
	r.add("mail_deliveries", float64(e.sc.Mails)/el.Seconds(), "mails/s").Goal = "≥ 1,000/s"
	r.add("alerts_stored", float64(e.sc.Mails)/stored.Seconds(), "alerts/s").Note = "async publish to VIGIL_ALERTS"
	r.add("smtp_sessions", float64(sink.conns.Load()), "sessions")
	return st.stop()
}

// smtpSink is an SMTP server on loopback that accepts every mail and
// discards it, counting deliveries and signalling each MAIL FROM.
type smtpSink struct {
	addr      string
	srv       *smtp.Server
	delivered atomic.Int64
	conns     atomic.Int64
	mail      chan time.Time
}

func startSMTP(ctx context.Context) (*smtpSink, error) {
	l, err := listen(ctx)
	if err != nil {
		return nil, err
	}
	s := &smtpSink{addr: l.Addr().String(), mail: make(chan time.Time, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.conns.Add(1)
		return &sinkSession{s: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ReadTimeout, s.srv.WriteTimeout = time.Minute, time.Minute
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *smtpSink) close() { _ = s.srv.Close() }

type sinkSession struct{ s *smtpSink }

func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	select {
	case ss.s.mail <- time.Now():
	default:
	}
	return nil
}

func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (ss *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.delivered.Add(1)
	return nil
}
