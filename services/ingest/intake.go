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

// serveNATS is Run: queue subscriptions on the three intake subjects whose
// messages are handled by at most cfg.Workers goroutines at once, so a slow
// PubAck never holds up the subscription.
func (r *Role) serveNATS(ctx context.Context) error {
	// Work in flight finishes after ctx ends: a drained message has been
	// taken from the queue group and must still be stored and answered.
	work := context.WithoutCancel(ctx)
	sem := make(chan struct{}, r.cfg.Workers)
	var wg sync.WaitGroup
	handler := func(o op, okCode int, pulses bool, decodeBody func(*nats.Msg, *request) error) nats.MsgHandler {
		return func(m *nats.Msg) {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				wctx, cancel := context.WithTimeout(work, r.cfg.PublishTimeout)
				defer cancel()
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
				err := decodeBody(m, &req)
				if err == nil {
					body, err = o(wctx, req)
				}
				code, body := r.answer(body, err, okCode, pulses)
				if m.Reply == "" {
					return
				}
				reply := &nats.Msg{Subject: m.Reply, Data: body, Header: nats.Header{headerStatus: []string{strconv.Itoa(code)}}}
				if err := r.nc.PublishMsg(reply); err != nil {
					r.log.Warn("intake reply failed", "subject", m.Subject, "err", err)
				}
			}()
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
		{vigil.SubjectInPulse, handler(r.acceptPulses, http.StatusAccepted, true, asIs)},
		{vigil.SubjectInCancel, handler(r.cancel, http.StatusOK, false, cancelBody)},
		{vigil.SubjectInAlert, handler(r.raiseAlert, http.StatusAccepted, false, asIs)},
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
		r.log.Info("nats intake ready", "subjects", []string{vigil.SubjectInPulse, vigil.SubjectInCancel, vigil.SubjectInAlert}, "queue", vigil.IngestQueue)
		<-ctx.Done()
	}
	r.drain(active)
	wg.Wait()
	return err
}

// drain drains subs and waits until each is closed, so every message the
// server already handed us has been dispatched, or until drainTimeout.
func (r *Role) drain(subs []*nats.Subscription) {
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
