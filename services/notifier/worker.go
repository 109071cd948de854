package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// infraRetry is how soon a job is tried again when JetStream itself failed
// (a KV read, a publish), which says nothing about the channel.
const infraRetry = time.Second

// handleJob delivers one job message. See docs/notifier.md for the states.
func (r *Role) handleJob(ctx context.Context, m jetstream.Msg) {
	var j Job
	if err := json.Unmarshal(m.Data(), &j); err != nil || j.ID == "" || j.Channel == "" {
		r.deps.Log.Warn("notifier: undecodable job dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	j.Attempt = max(j.Attempt, 1)
	if d := j.NotBefore.Sub(r.now()); d > 0 {
		_ = m.NakWithDelay(d)
		return
	}
	if err := r.deliver(ctx, m, &j); err != nil {
		if ctx.Err() == nil {
			r.deps.Log.Warn("notifier: job put back", "job", j.ID, "channel", j.Channel, "err", err)
			_ = m.NakWithDelay(infraRetry)
		} else {
			_ = m.Nak() // stopping: another replica takes it now
		}
	}
}

// deliver runs one attempt of job j (message m) and settles m. It returns
// an error, leaving m unsettled, when JetStream failed or ctx ended.
func (r *Role) deliver(ctx context.Context, m jetstream.Msg, j *Job) error {
	done, err := r.delivered(ctx, j.ID)
	if err != nil {
		return err
	}
	if done {
		return r.settle(ctx, m, j, []vigil.Alert{j.Alert}, OutcomeDuplicate, nil)
	}
	alerts, wait, err := r.alertsFor(ctx, j)
	if err != nil {
		return err
	}
	if wait > 0 {
		_ = m.NakWithDelay(wait)
		return nil
	}
	if len(alerts) == 0 {
		return r.settle(ctx, m, j, []vigil.Alert{j.Alert}, OutcomeResolved, nil)
	}
	now := r.now()
	live := alerts[:0:0]
	for i := range alerts {
		if r.sil.muted(&alerts[i], j.Channel, j.Target, now) == "" {
			live = append(live, alerts[i])
		}
	}
	if len(live) == 0 {
		return r.settle(ctx, m, j, alerts, OutcomeSilenced, nil)
	}
	ch, ok := r.cfg.channels[j.Channel]
	if !ok {
		return r.settle(ctx, m, j, live, OutcomeDead, fmt.Errorf("%s: %w", j.Channel, errNotConfigured))
	}
	d := newData(j, live, now, r.cfg.ExternalURL)
	title, body, err := r.cfg.templates.render(d)
	if err != nil {
		return r.settle(ctx, m, j, live, OutcomeDead, channel.Permanent(err))
	}
	msg := channel.Message{ID: j.ID, Title: title, Body: body, Level: j.Alert.Level, URL: d.URL, Alerts: live, At: j.Alert.At}
	if err := r.send(ctx, m, ch, j, msg); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if channel.IsPermanent(err) || j.Attempt >= r.attempts {
			return r.settle(ctx, m, j, live, OutcomeDead, err)
		}
		return r.settle(ctx, m, j, live, OutcomeRetrying, err)
	}
	if err := r.markDelivered(ctx, j); err != nil {
		// The provider has it; without the mark a redelivery would send it
		// again, so keep trying to write the mark rather than the message.
		r.deps.Log.Warn("notifier: delivered mark not written", "job", j.ID, "err", err)
	}
	if j.Stage == StageNotify && j.Retry == 0 && !j.Stored.IsZero() {
		r.m.latency.WithLabelValues(j.Channel).Observe(r.now().Sub(j.Stored).Seconds())
	}
	return r.settle(ctx, m, j, live, OutcomeDelivered, nil)
}

// send calls the channel with the attempt timeout, telling JetStream the
// job is in progress while a slow provider takes its time.
func (r *Role) send(ctx context.Context, m jetstream.Msg, ch channel.Channel, j *Job, msg channel.Message) error {
	sctx, cancel := context.WithTimeout(ctx, r.cfg.SendTimeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(r.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = m.InProgress()
			case <-stop:
				return
			}
		}
	}()
	return ch.Send(sctx, j.Target, msg)
}

// settle records outcome o of job j in the history and finishes message m:
// retrying re-queues the job as attempt+1 after the back-off; dead stores
// a dead letter and terminates m; the others acknowledge m. Final outcomes
// of a down alert's notify or repeat job schedule the next repeat.
func (r *Role) settle(ctx context.Context, m jetstream.Msg, j *Job, alerts []vigil.Alert, o Outcome, cause error) error {
	now := r.now()
	rec := newAttempt(j, alerts, o, now)
	if cause != nil {
		rec.Error = cause.Error()
	}
	if o == OutcomeSilenced || o == OutcomeDuplicate || o == OutcomeResolved {
		rec.Attempt = 0
	}
	switch o {
	case OutcomeRetrying:
		next := *j
		next.Attempt++
		wait := r.cfg.Retry.Jittered(j.Attempt)
		next.NotBefore = now.Add(wait).UTC()
		if _, err := publishJobs(ctx, r.deps.Assets.JS, []Job{next}); err != nil {
			// JetStream is failing too: keep this attempt's message and
			// try it again after the back-off, not at once.
			r.deps.Log.Warn("notifier: re-queue failed, retrying the same attempt", "job", j.ID, "err", err)
			return m.NakWithDelay(wait)
		}
		rec.NextRetry = next.NotBefore
	case OutcomeDead:
		if err := publishDeadLetter(ctx, r.deps.Assets.JS, j, cause, now); err != nil {
			return err
		}
		r.m.dead.WithLabelValues(j.Channel).Inc()
	}
	if o != OutcomeRetrying && o != OutcomeResolved {
		if err := r.scheduleRepeat(ctx, j, now); err != nil {
			return err
		}
	}
	r.record(ctx, &rec)
	r.m.deliveries.WithLabelValues(j.Channel, string(o)).Inc()
	if o == OutcomeDead {
		return m.Term()
	}
	return m.Ack()
}

// dead records job j, which never reached a queue, as a dead letter.
func (r *Role) dead(ctx context.Context, j *Job, alerts []vigil.Alert, cause error) error {
	now := r.now()
	if err := publishDeadLetter(ctx, r.deps.Assets.JS, j, cause, now); err != nil {
		return err
	}
	r.m.dead.WithLabelValues(j.Channel).Inc()
	r.m.deliveries.WithLabelValues(j.Channel, string(OutcomeDead)).Inc()
	rec := newAttempt(j, alerts, OutcomeDead, now)
	rec.Attempt, rec.Error = 0, cause.Error()
	r.record(ctx, &rec)
	return nil
}

// scheduleRepeat queues the next repeat of a down alert's notify or repeat
// job, due Repeat from now; the job id makes a second scheduling (after a
// crash) a no-op.
func (r *Role) scheduleRepeat(ctx context.Context, j *Job, now time.Time) error {
	if j.Repeat <= 0 || j.Alert.Kind != vigil.AlertDown || j.Stage == StageEscalate {
		return nil
	}
	step := j.Step + 1
	next := Job{
		ID:      jobID(alertKey(&j.Alert, j.Group), StageRepeat, j.Route, step, j.Channel, j.Target),
		Channel: j.Channel, Target: j.Target, Route: j.Route, Stage: StageRepeat, Step: step,
		Alert: j.Alert, Group: j.Group, Repeat: j.Repeat, Stored: j.Stored, Attempt: 1,
		NotBefore: now.Add(j.Repeat.D()).UTC(),
	}
	_, err := publishJobs(ctx, r.deps.Assets.JS, []Job{next})
	return err
}

// record stores an attempt in the history. A failure is logged, not
// returned: the delivery itself is settled either way.
func (r *Role) record(ctx context.Context, a *Attempt) {
	data, err := json.Marshal(a)
	if err == nil {
		_, err = r.deps.Assets.JS.PublishMsg(ctx, &nats.Msg{Subject: a.subject(), Data: data})
	}
	if err != nil {
		r.deps.Log.Warn("notifier: attempt not recorded", "job", a.Job, "status", a.Status, "err", err)
	}
}

// delivered reports whether job id has its mark in KV vigil_delivered.
func (r *Role) delivered(ctx context.Context, id string) (bool, error) {
	_, err := r.deps.Assets.Delivered.Get(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read delivered mark: %w", err)
}

// markDelivered writes job j's mark: {"at": time, "attempt": n}.
func (r *Role) markDelivered(ctx context.Context, j *Job) error {
	v, err := json.Marshal(struct {
		At      time.Time `json:"at"`
		Attempt int       `json:"attempt"`
	}{r.now().UTC(), j.Attempt})
	if err != nil {
		return err
	}
	var last error
	for range 3 {
		_, err := r.deps.Assets.Delivered.Create(ctx, j.ID, v)
		if err == nil || errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		last = err
	}
	return fmt.Errorf("write delivered mark: %w", last)
}

// alertsFor returns the alerts job j tells about now: its alert, or the
// members of its batch that route to its receiver; for repeats and
// escalations only those still down. wait > 0 asks to come back later: a
// grouped job waits (up to GroupWait after its alert was stored) until its
// whole batch is stored. No alerts means nothing is left to tell.
func (r *Role) alertsFor(ctx context.Context, j *Job) (alerts []vigil.Alert, wait time.Duration, err error) {
	if !j.Group {
		alerts = []vigil.Alert{j.Alert}
	} else {
		all, complete, err := r.members(ctx, j)
		if err != nil {
			return nil, 0, err
		}
		if left := j.Stored.Add(r.cfg.GroupWait).Sub(r.now()); !complete && left > 0 {
			return nil, min(left, 500*time.Millisecond), nil
		}
		for i := range all {
			if r.wants(&all[i], j) {
				alerts = append(alerts, all[i])
			}
		}
	}
	if j.Stage == StageNotify {
		return alerts, 0, nil
	}
	down := alerts[:0:0]
	for _, a := range alerts {
		ok, err := r.stillDown(ctx, &a)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			down = append(down, a)
		}
	}
	return down, 0, nil
}

// wants reports whether alert a routes to job j's receiver at j's stage.
func (r *Role) wants(a *vigil.Alert, j *Job) bool {
	for _, s := range r.cfg.plan(a) {
		if s.channel != j.Channel || s.target != j.Target {
			continue
		}
		switch j.Stage {
		case StageNotify:
			return s.stage == StageNotify
		case StageRepeat:
			return s.stage == StageNotify && s.repeat > 0
		case StageEscalate:
			return s.stage == StageEscalate && s.route == j.Route && s.step == j.Step
		}
	}
	return false
}

// stillDown reports whether a's outage goes on: the service's verdict in
// KV vigil_services is down with a's DownSeq.
func (r *Role) stillDown(ctx context.Context, a *vigil.Alert) (bool, error) {
	if a.Kind != vigil.AlertDown || a.Service == "" {
		return false, nil
	}
	e, err := r.deps.Assets.Services.Get(ctx, vigil.Token(a.Service))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read verdict: %w", err)
	}
	var v vigil.Verdict
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return false, nil //nolint:nilerr // an unreadable verdict is not an outage to repeat
	}
	return v.Status == vigil.StatusDown && v.DownSeq == a.DownSeq, nil
}
