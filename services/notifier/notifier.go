// Package notifier is vigil's notifier role: a durable delivery queue on
// JetStream that turns every alert into notifications by mail, Pushover,
// webhook and desktop toast, with routing, retries, dead letters, dedup,
// history, silences, grouping, repeats and escalation.
//
// The fan-out reads stream VIGIL_ALERTS through the durable consumer
// "notifier" (shared by every replica, so each alert is handled once),
// routes each alert to its receivers (the alert's owner, the matching
// routes or the default route) and stores one delivery job per (alert,
// channel, target) on the work queue VIGIL_DELIVERIES, with a message id
// derived from that triple; it acknowledges the alert only once every job
// is stored, so a crash in between re-runs the fan-out into the same,
// deduplicated jobs. One durable consumer per channel ("notifier-mail", …)
// delivers the jobs: it skips jobs marked in KV vigil_delivered, sends,
// marks, records the attempt on VIGIL_ATTEMPTS and acknowledges. A
// transient failure re-queues the job with exponential back-off for at
// least 24 h; a permanent one (or the last attempt) moves it to
// VIGIL_DEAD_LETTERS. See docs/notifier.md.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/notifier/toast"
)

// Consumer is the name of the durable consumer on stream VIGIL_ALERTS that
// every notifier replica shares.
const Consumer = "notifier"

// WorkerConsumer returns the name of the durable consumer on stream
// VIGIL_DELIVERIES that delivers the jobs of channel type typ:
// "notifier-<typ>".
func WorkerConsumer(typ string) string { return "notifier-" + typ }

// fanOutWorkers is how many alerts one replica fans out at once.
const fanOutWorkers = 4

// alertAckWait is the ack wait of the alert consumer: a replica that died
// while fanning an alert out has it redelivered after this. The fan-out
// itself is bounded by fanOutTimeout.
const (
	alertAckWait  = 15 * time.Second
	fanOutTimeout = 10 * time.Second
)

// Deps are the role's collaborators; see bus.Deps.
type Deps = bus.Deps

// Role is a running notifier.
type Role struct {
	cfg      *compiled
	deps     Deps
	m        *metrics
	http     *HTTP
	sil      *silences
	groups   *groupCache
	attempts int
	ackWait  time.Duration
}

// New returns a notifier for cfg. It fails when cfg is invalid, a
// dependency is missing, or its metrics cannot be registered. Without a
// toast channel in cfg.Channels it adds one that publishes on VIGIL_TOASTS.
func New(cfg Config, deps Deps) (*Role, error) {
	if deps.Assets == nil || deps.Assets.JS == nil || deps.Log == nil || deps.Metrics == nil {
		return nil, errors.New("notifier: Assets, Log and Metrics are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	hasToast := false
	for _, c := range cfg.Channels {
		hasToast = hasToast || (c != nil && c.Type() == vigil.ChannelToast)
	}
	if !hasToast {
		cfg.Channels = append(append([]channel.Channel(nil), cfg.Channels...), toast.New(deps.Assets.JS))
	}
	c, err := compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("notifier config: %w", err)
	}
	m, err := newMetrics(deps.Metrics, deps.Assets.DeadLetters)
	if err != nil {
		return nil, err
	}
	h, err := NewHTTP(deps)
	if err != nil {
		return nil, err
	}
	return &Role{
		cfg: c, deps: deps, m: m, http: h, sil: newSilences(), groups: newGroupCache(),
		attempts: cfg.Retry.Attempts(), ackWait: cfg.SendTimeout + 10*time.Second,
	}, nil
}

// Routes mounts the delivery history, dead letter and silence endpoints
// (see HTTP.Routes).
func (r *Role) Routes(rt chi.Router) { r.http.Routes(rt) }

func (r *Role) now() time.Time { return r.deps.Now() }

// Run creates or updates the consumers, follows the silences, and fans out
// alerts and delivers jobs until ctx ends; then it stops pulling, lets the
// sends in flight finish (at most 5 s), puts back what it had not started,
// closes the channels that are io.Closers (a mail channel's SMTP sessions),
// and returns nil. It returns an error when a consumer or the silence watch
// cannot be created.
func (r *Role) Run(ctx context.Context) error {
	a := r.deps.Assets
	log := r.deps.Log
	for _, t := range []string{"mail", "pushover", "webhook"} {
		if _, ok := r.cfg.channels[t]; !ok {
			log.Warn("notifier: channel not configured; alerts whose owner names it go to the dead letters", "channel", t)
		}
	}
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	if err := r.sil.watch(wctx, a.Silences, log); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	select {
	case <-r.sil.ready:
	case <-ctx.Done():
		return nil
	}

	alerts, err := a.JS.CreateOrUpdateConsumer(ctx, vigil.StreamAlerts, jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "vigil notifier: fan-out of every alert into delivery jobs",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       alertAckWait,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("notifier consumer: %w", err)
	}
	type started struct {
		cons jetstream.Consumer
		n    int
		fn   func(context.Context, jetstream.Msg)
	}
	parts := []started{{alerts, fanOutWorkers, r.handleAlert}}
	for typ := range r.cfg.channels {
		cons, err := a.JS.CreateOrUpdateConsumer(ctx, vigil.StreamDeliveries, jetstream.ConsumerConfig{
			Durable:       WorkerConsumer(typ),
			Description:   "vigil notifier: deliveries of channel " + typ,
			FilterSubject: vigil.DeliverySubject(typ),
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       r.ackWait,
			// Waiting jobs (not-before times) stay pending, and retries are
			// new messages: neither must be capped by the server.
			MaxDeliver:    -1,
			MaxAckPending: -1,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("notifier consumer %s: %w", WorkerConsumer(typ), err)
		}
		parts = append(parts, started{cons, r.cfg.Workers, r.handleJob})
	}
	// Handlers outlive ctx by a short grace, so a send in flight at
	// shutdown can finish and be acknowledged.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var pools []*pool
	for _, p := range parts {
		pl, err := startPool(hctx, p.cons, p.n, p.fn, r.deps.Log)
		if err != nil {
			for _, pl := range pools {
				pl.stop()
			}
			return fmt.Errorf("notifier consume: %w", err)
		}
		pools = append(pools, pl)
	}
	<-ctx.Done()
	grace := time.AfterFunc(5*time.Second, cancel)
	defer grace.Stop()
	var wg sync.WaitGroup
	for _, pl := range pools {
		wg.Go(pl.stop)
	}
	wg.Wait()
	for _, ch := range r.cfg.channels {
		if c, ok := ch.(io.Closer); ok {
			_ = c.Close()
		}
	}
	return nil
}

// pool hands the messages of one consumer to n goroutines.
type pool struct {
	cc     jetstream.ConsumeContext
	ch     chan jetstream.Msg
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

func startPool(ctx context.Context, cons jetstream.Consumer, n int, fn func(context.Context, jetstream.Msg), log interface {
	Debug(string, ...any)
},
) (*pool, error) {
	p := &pool{ch: make(chan jetstream.Msg)}
	for range n {
		p.wg.Go(func() {
			for m := range p.ch {
				fn(ctx, m)
			}
		})
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		p.mu.RLock()
		defer p.mu.RUnlock()
		if p.closed {
			_ = m.Nak()
			return
		}
		p.ch <- m
	},
		jetstream.PullMaxMessages(n),
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Debug("notifier consume", "err", err)
		}))
	if err != nil {
		close(p.ch)
		p.wg.Wait()
		return nil, err
	}
	p.cc = cc
	return p, nil
}

// stop ends the subscription, waits for the handlers, and puts back (Nak)
// what was received but not handled, so another replica takes it at once.
func (p *pool) stop() {
	p.cc.Stop()
	// A callback blocked on p.ch is released by the workers still reading;
	// once it returns, none can start (closed is set under the lock).
	p.mu.Lock()
	p.closed = true
	close(p.ch)
	p.mu.Unlock()
	p.wg.Wait()
	<-p.cc.Closed()
}
