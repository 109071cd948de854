package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// handleAlert fans one alert out into delivery jobs and acknowledges it once
// every job is stored. An undecodable alert is terminated (redelivery
// cannot help); a failure to store is put back for another try in 1 s.
func (r *Role) handleAlert(ctx context.Context, m jetstream.Msg) {
	var a vigil.Alert
	if err := json.Unmarshal(m.Data(), &a); err != nil {
		r.deps.Log.Warn("notifier: undecodable alert dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	stored := r.now()
	if md, err := m.Metadata(); err == nil {
		stored = md.Timestamp
	}
	ctx, cancel := context.WithTimeout(ctx, fanOutTimeout)
	defer cancel()
	if err := r.fanOut(ctx, &a, stored); err != nil {
		r.deps.Log.Warn("notifier: fan-out failed, retrying", "alert", a.ID, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if err := m.Ack(); err != nil {
		r.deps.Log.Warn("notifier: ack alert", "alert", a.ID, "err", err)
		return
	}
	r.m.alerts.WithLabelValues(string(a.Kind)).Inc()
}

// fanOut stores the jobs of alert a (stored in VIGIL_ALERTS at stored). A
// receiver whose channel is not configured becomes a dead letter at once.
func (r *Role) fanOut(ctx context.Context, a *vigil.Alert, stored time.Time) error {
	group := r.cfg.GroupThreshold > 0 && a.Batch != "" && a.BatchSize > r.cfg.GroupThreshold
	specs := r.cfg.plan(a)
	if a.Kind == vigil.AlertRecovered {
		more, err := r.escalatedReceivers(ctx, a, specs)
		if err != nil {
			return err
		}
		specs = append(specs, more...)
	}
	key := alertKey(a, group)
	jobs := make([]Job, 0, len(specs))
	for _, s := range specs {
		j := Job{
			ID:      jobID(key, s.stage, s.route, s.step, s.channel, s.target),
			Channel: s.channel, Target: s.target, Route: s.route, Stage: s.stage, Step: s.step,
			Alert: *a, Group: group, Repeat: vigil.Seconds(s.repeat), Stored: stored.UTC(), Attempt: 1,
		}
		if s.stage == StageEscalate {
			j.NotBefore = a.At.Add(s.after).UTC()
		}
		if _, ok := r.cfg.channels[s.channel]; !ok {
			// Nothing will ever consume this channel's queue: tell the
			// operator through the dead letters instead.
			if err := r.dead(ctx, &j, []vigil.Alert{*a}, fmt.Errorf("%s: %w", s.channel, errNotConfigured)); err != nil {
				return err
			}
			continue
		}
		jobs = append(jobs, j)
	}
	fresh, err := publishJobs(ctx, r.deps.Assets.JS, jobs)
	if err != nil {
		return err
	}
	for i, j := range jobs {
		if fresh[i] {
			r.m.jobs.WithLabelValues(j.Channel).Inc()
		}
	}
	return nil
}

// escalatedReceivers returns, for a recovered alert, the escalation
// receivers of its outage that were told about it (their escalation job is
// marked delivered) and are not among have: whoever heard of an outage
// hears of its end. The outage's down alert id is the watchdog's
// "down:<token>:<down_seq>". Escalations of a grouped outage are not
// followed.
func (r *Role) escalatedReceivers(ctx context.Context, a *vigil.Alert, have []spec) ([]spec, error) {
	if a.DownSeq == 0 || a.Service == "" {
		return nil, nil
	}
	down := *a
	down.Kind, down.Level = vigil.AlertDown, vigil.LevelError
	down.ID = "down:" + vigil.Token(a.Service) + ":" + strconv.FormatUint(a.DownSeq, 10)
	seen := map[receiverKey]bool{}
	for _, s := range have {
		seen[receiverKey{s.channel, s.target}] = true
	}
	var out []spec
	for _, s := range r.cfg.plan(&down) {
		k := receiverKey{s.channel, s.target}
		if s.stage != StageEscalate || seen[k] {
			continue
		}
		ok, err := r.delivered(ctx, jobID(down.ID, s.stage, s.route, s.step, s.channel, s.target))
		if err != nil {
			return nil, err
		}
		if ok {
			seen[k] = true
			out = append(out, spec{stage: StageNotify, route: s.route, channel: s.channel, target: s.target})
		}
	}
	return out, nil
}
