package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// headerStatus carries the HTTP-equivalent status code ("202", "400", …) on
// every reply of the direct-NATS intake.
const headerStatus = "Status"

// drainTimeout bounds how long Run waits for its subscriptions to drain.
const drainTimeout = 30 * time.Second

// op is one intake operation as the NATS intake calls it.
type op func(ctx context.Context, req request) ([]byte, error)

// intakeOp is one intake subject's operation as the NATS intake runs it.
type intakeOp struct {
	run    op
	okCode int
	pulses bool
	// prepare fills the request from the message beyond the common headers.
	prepare func(*nats.Msg, *request) error
}

type job struct {
	m  *nats.Msg
	op *intakeOp
}

// serveNATS is Run: queue subscriptions on the intake subjects whose
// messages are handed to cfg.Workers long-lived workers, so a slow PubAck
// never holds up a subscription and a hot worker keeps its grown stack.
func (r *Role) serveNATS(ctx context.Context) error {
	// Work in flight finishes after ctx ends: a drained message has been
	// taken from the queue group and must still be stored and answered.
	work := context.WithoutCancel(ctx)
	jobs := make(chan job, r.cfg.Workers)
	// stop is closed once the subscriptions are drained: workers then finish
	// the queued jobs and exit. It is never jobs that is closed, because a
	// subscription that failed to drain in time may still be delivering.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case j := <-jobs:
					r.serveMsg(work, j.m, j.op)
				case <-stop:
					for {
						select {
						case j := <-jobs:
							r.serveMsg(work, j.m, j.op)
						default:
							return
						}
					}
				}
			}
		})
	}
	handler := func(o *intakeOp) nats.MsgHandler {
		return func(m *nats.Msg) {
			select {
			case jobs <- job{m, o}:
			case <-stop:
				r.log.Warn("intake message dropped after shutdown", "subject", m.Subject)
			}
		}
	}
	asIs := func(*nats.Msg, *request) error { return nil }
	cancelBody := func(m *nats.Msg, req *request) error {
		if int64(len(m.Data)) > r.cfg.MaxBody {
			return fmt.Errorf("body is over the limit of %d bytes: %w", r.cfg.MaxBody, vigil.ErrTooLarge)
		}
		if _, err := mediaForm(req.contentType, false, formJSON); err != nil {
			return err
		}
		name, err := decodeCancel(m.Data)
		req.service = name
		return err
	}
	subs := []struct {
		subject string
		h       nats.MsgHandler
	}{
		{vigil.SubjectInPulse, handler(&intakeOp{r.acceptPulses, http.StatusAccepted, true, asIs})},
		{vigil.SubjectInCancel, handler(&intakeOp{r.cancel, http.StatusOK, false, cancelBody})},
		{vigil.SubjectInAlert, handler(&intakeOp{r.raiseAlert, http.StatusAccepted, false, asIs})},
		{vigil.SubjectInEvent, handler(&intakeOp{r.acceptEvents, http.StatusAccepted, false, asIs})},
	}
	var active []*nats.Subscription
	var err error
	for _, s := range subs {
		var sub *nats.Subscription
		sub, err = r.nc.QueueSubscribe(s.subject, vigil.IngestQueue, s.h)
		if err != nil {
			err = fmt.Errorf("ingest: subscribe %s: %w", s.subject, err)
			break
		}
		active = append(active, sub)
	}
	if err == nil {
		r.log.Info("nats intake ready", "subjects", []string{vigil.SubjectInPulse, vigil.SubjectInCancel, vigil.SubjectInAlert, vigil.SubjectInEvent}, "queue", vigil.IngestQueue)
		<-ctx.Done()
	}
	r.drain(active)
	close(stop)
	wg.Wait()
	return err
}

// serveMsg runs one intake message through its operation and, when it has a
// reply subject, answers with the HTTP body and a Status header.
func (r *Role) serveMsg(ctx context.Context, m *nats.Msg, o *intakeOp) {
	req := request{
		contentType: m.Header.Get("Content-Type"),
		key:         m.Header.Get(headerIdempotencyKey),
		body:        m.Data,
		form:        formAuto,
	}
	if req.key == "" {
		req.key = m.Header.Get(jetstream.MsgIDHeader)
	}
	var body []byte
	err := o.prepare(m, &req)
	if err == nil {
		body, err = o.run(ctx, req)
	}
	code, body := r.answer(body, err, o.okCode, o.pulses)
	if m.Reply == "" {
		return
	}
	reply := &nats.Msg{Subject: m.Reply, Data: body, Header: nats.Header{headerStatus: []string{strconv.Itoa(code)}}}
	if err := r.nc.PublishMsg(reply); err != nil {
		r.log.Warn("intake reply failed", "subject", m.Subject, "err", err)
	}
}

// drain drains subs and waits until each is closed, so every message the
// server already handed us has been dispatched, or until drainTimeout. A
// disconnected connection has nothing left to deliver: its subscriptions are
// dropped at once instead of waiting for a flush that cannot happen.
func (r *Role) drain(subs []*nats.Subscription) {
	if !r.nc.IsConnected() {
		for _, s := range subs {
			_ = s.Unsubscribe() // fails only when already closed
		}
		return
	}
	closed := make([]<-chan nats.SubStatus, len(subs))
	for i, s := range subs {
		closed[i] = s.StatusChanged(nats.SubscriptionClosed)
		if err := s.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			r.log.Warn("drain intake subscription", "subject", s.Subject, "err", err)
		}
	}
	timeout := time.NewTimer(drainTimeout)
	defer timeout.Stop()
	for i, ch := range closed {
		select {
		case <-ch:
		case <-timeout.C:
			r.log.Warn("intake subscription did not drain in time", "subject", subs[i].Subject, "timeout", drainTimeout)
			return
		}
	}
}
