package watchdog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// maxRound bounds the decisions executed in one round (one alert batch):
// a mass expiry of up to maxRound services is one batch whose alerts are
// all stored before any of its verdicts; a larger one takes several rounds.
// A decision is about 250 bytes, so a full round holds about 32 MiB.
// maxChunk is how many decisions are popped under one lock hold, and the
// unit in which a round's acks are collected and its verdicts published.
// Variables only so that tests can make them small.
var (
	maxRound = 1 << 17
	maxChunk = 4096
)

// gapSettle widens a monitoring gap past the takeover instant: a client
// whose pulses failed while vigil was away needs a moment to get through.
const gapSettle = 5 * time.Second

// maxGapNames caps the service names listed in one gap alert.
const maxGapNames = 1000

// decision is a snapshot, taken under the lock, of what to do for an entry.
type decision struct {
	e       *entry
	act     action
	token   string
	name    string
	seq     uint64
	at      int64
	downAt  int64
	dl      int64
	cancel  int64
	owner   *vigil.Owner
	host    string
	origin  string
	vRev    uint64
	vDown   uint64
	vSince  int64
	vStatus vigil.Status
	rearm   int64

	alertOK bool
	failed  bool
	newRev  uint64
	verdict *vigil.Verdict
}

func snapshot(e *entry) decision {
	return decision{
		e: e, act: e.act, token: e.token, name: e.name, seq: e.seq, at: e.at,
		downAt: e.downAt(), dl: e.deadline(), cancel: e.cancelAt, owner: e.owner, host: e.host,
		origin: e.origin, vRev: e.vRev, vDown: e.vDownSeq, vSince: e.vSince, vStatus: e.vStatus,
	}
}

// takeOver runs when this replica becomes leader: it waits until the view
// holds every record stored so far, then applies the gap policy to prev, the
// liveness mark found at takeover (nil on the first run ever). Only then may
// deadlines be judged.
func (r *Role) takeOver(ctx context.Context, e jetstream.KeyValueEntry) error {
	if err := r.catchUp(ctx, "KV_"+vigil.BucketServices, &r.verdictApplied); err != nil {
		return err
	}
	if err := r.catchUp(ctx, "KV_"+vigil.BucketPulses, &r.pulseApplied); err != nil {
		return err
	}
	if e == nil {
		r.writeAlive(ctx) // first run ever: nothing was being monitored
		return nil
	}
	var last mark
	if err := json.Unmarshal(e.Value(), &last); err != nil {
		r.log.Warn("unreadable liveness mark; assuming no gap", "err", err)
		r.writeAlive(ctx)
		return nil
	}
	now := r.now()
	gap := now.Sub(last.At)
	r.writeAlive(ctx)
	if gap <= r.cfg.GapThreshold {
		return nil
	}
	r.m.gaps.Inc()
	r.log.Warn("monitoring gap", "from", last.At, "to", now, "length", gap.Round(time.Millisecond), "policy", r.cfg.GapPolicy)
	if r.cfg.GapPolicy != GapAlert {
		return nil
	}
	return r.handleGap(ctx, last.At, now, e.Revision())
}

// handleGap gives every service whose deadline fell in (from, to+settle] a
// fresh period from now (a verdict with Rearm) and stores one gap alert that
// lists them, instead of one down alert each.
func (r *Role) handleGap(ctx context.Context, from, to time.Time, markRev uint64) error {
	lo, hi := from.UnixNano(), to.Add(gapSettle).UnixNano()
	var ds []decision
	r.mu.Lock()
	for _, e := range r.t.byToken {
		// Up or not yet registered, and due to turn down inside the gap.
		if e.op == vigil.OpPulse && e.seq != 0 && e.vDownSeq == 0 && e.downAt() > lo && e.downAt() <= hi {
			d := snapshot(e)
			d.rearm = to.UnixNano() + e.nextIn
			ds = append(ds, d)
		}
	}
	r.mu.Unlock()
	if len(ds) == 0 {
		return nil
	}
	names := make([]string, 0, min(len(ds), maxGapNames))
	for i := range ds {
		if i < maxGapNames {
			names = append(names, ds[i].name)
		}
		ds[i].verdict = &vigil.Verdict{
			Service: ds[i].name, Status: vigil.StatusUp, Since: r.upSince(&ds[i]),
			Seq: ds[i].seq, LastPulse: unixNano(ds[i].at), Deadline: unixNano(ds[i].rearm), Owner: ds[i].owner,
			Reason: "monitoring gap", Rearm: unixNano(ds[i].rearm),
		}
	}
	more := ""
	if len(ds) > len(names) {
		more = fmt.Sprintf(" and %d more", len(ds)-len(names))
	}
	a := &vigil.Alert{
		ID:   "gap:" + r.cfg.GapPolicy + ":" + fmt.Sprint(markRev),
		Kind: vigil.AlertGap, Level: vigil.LevelWarning, At: to.UTC(), GapFrom: from.UTC(), GapTo: to.UTC(),
		Title: fmt.Sprintf("vigil was not monitoring for %s", to.Sub(from).Round(time.Second)),
		Message: fmt.Sprintf("vigil was not monitoring from %s to %s. %d services had deadlines in that time: %s%s. "+
			"Each gets a fresh period before it is judged.", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339),
			len(ds), strings.Join(names, ", "), more),
		Services: names,
	}
	if _, err := r.publishAlert(ctx, a); err != nil {
		return fmt.Errorf("store gap alert: %w", err)
	}
	r.m.raised.WithLabelValues(string(vigil.AlertGap)).Inc()
	r.writeVerdicts(ctx, ds)
	r.settle(ctx, ds)
	return nil
}

// catchUp waits until the follower of stream has applied every message the
// stream held when catchUp was called.
func (r *Role) catchUp(ctx context.Context, stream string, applied *atomic.Uint64) error {
	s, err := r.a.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("catch up on %s: %w", stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return nil
	}
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	for applied.Load() < st.LastSeq {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
		}
	}
	return nil
}

// sweepLoop waits for the next due action and executes whatever is due,
// until ctx ends.
func (r *Role) sweepLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		next, ok := r.t.nextDue()
		r.mu.Unlock()
		wait := time.Hour
		if ok {
			wait = max(time.Until(time.Unix(0, next)), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
		}
		if err := r.sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("watchdog sweep", "err", err)
			select { // back off; the bus is failing
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		select { // at most one sweep per interval
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.SweepInterval):
		}
	}
}

// sweep executes every due action, in rounds of at most maxRound
// decisions. Before judging any service down it makes sure the view holds
// every pulse stored so far, so a pulse that was acknowledged before its
// deadline is never missed.
func (r *Role) sweep(ctx context.Context) error {
	for {
		now := r.now().UnixNano()
		r.mu.Lock()
		next, ok := r.t.nextDue()
		r.mu.Unlock()
		if !ok || next > now {
			return nil
		}
		if err := r.catchUp(ctx, "KV_"+vigil.BucketPulses, &r.pulseApplied); err != nil {
			return err
		}
		ds := r.popRound(r.now().UnixNano())
		if len(ds) == 0 {
			return nil
		}
		failed := r.execute(ctx, ds)
		if failed > 0 {
			r.m.failures.Add(float64(failed))
			return fmt.Errorf("%d of %d alert or verdict writes failed; retrying", failed, len(ds))
		}
	}
}

// popRound takes up to maxRound entries due at or before now off the heap,
// maxChunk at a time so the lock is held briefly, and returns their
// decisions in due order.
func (r *Role) popRound(now int64) []decision {
	var ds []decision
	for len(ds) < maxRound {
		r.mu.Lock()
		es := r.t.popDue(now, min(maxChunk, maxRound-len(ds)))
		for _, e := range es {
			ds = append(ds, snapshot(e))
		}
		r.mu.Unlock()
		if len(es) < maxChunk {
			break
		}
	}
	return ds
}

// chunk is a run of decisions ds[lo:hi] with the futures of their pending
// writes; done is closed once every write has been resolved into ds.
type chunk struct {
	lo, hi int
	futs   []jetstream.PubAckFuture
	done   chan struct{}
}

// execute stores the alerts of a round of decisions, then their verdicts,
// then folds the results back into the view. It returns how many failed;
// failed decisions stay due and are retried.
//
// Alerts go first, all of them, because they are what users wait for (the
// API computes "down" from the deadline before any verdict is written):
// this goroutine encodes and publishes every alert of the round while a
// second goroutine collects their acks, chunk by chunk; only then are the
// verdicts published, each chunk once all its alerts are acked (so an alert
// is always stored before its verdict), while a third goroutine collects
// the verdict acks and settles each chunk. The async publish window
// (bus.NewJetStream) bounds what is in flight; the futures of a chunk are
// dropped once it is collected, so a round holds only its decisions. A
// round of one chunk does the same steps inline.
func (r *Role) execute(ctx context.Context, ds []decision) int {
	r.sweeps++
	downs := 0
	for i := range ds {
		if ds[i].act == actDown {
			downs++
		}
	}
	batch := fmt.Sprintf("%s-%d", r.cfg.Instance, r.sweeps)
	n := (len(ds) + maxChunk - 1) / maxChunk
	// A round of one chunk (every sweep but a mass expiry) runs inline: no
	// pipeline to keep full, no goroutine hand-offs on the detection path.
	var failed int
	settleChunk := func(c *chunk) {
		r.awaitVerdicts(ctx, ds[c.lo:c.hi], c.futs)
		c.futs = nil
		failed += r.settle(ctx, ds[c.lo:c.hi])
	}
	collect := func(c *chunk) { r.collectAlerts(ctx, ds, c) }
	finish, done := settleChunk, func() {}
	if n > 1 {
		alerted, settled := make(chan *chunk, n), make(chan *chunk, n)
		finished := make(chan struct{})
		go func() {
			for c := range alerted {
				r.collectAlerts(ctx, ds, c)
			}
		}()
		go func() {
			defer close(finished)
			for c := range settled {
				settleChunk(c)
			}
		}()
		collect = func(c *chunk) { alerted <- c }
		finish = func(c *chunk) { settled <- c }
		done = func() {
			close(alerted)
			close(settled)
			<-finished
		}
	}
	chunks := make([]*chunk, 0, n)
	for lo := 0; lo < len(ds); lo += maxChunk {
		c := &chunk{lo: lo, hi: min(lo+maxChunk, len(ds)), done: make(chan struct{})}
		c.futs = make([]jetstream.PubAckFuture, c.hi-c.lo)
		for i := c.lo; i < c.hi; i++ {
			a := r.alertFor(&ds[i], batch, downs)
			if a == nil {
				ds[i].alertOK = true
				continue
			}
			f, err := r.publishAlertAsync(a)
			if err != nil {
				ds[i].failed = true
				continue
			}
			c.futs[i-c.lo] = f
		}
		chunks = append(chunks, c)
		collect(c)
	}
	for _, c := range chunks {
		<-c.done
		vc := &chunk{lo: c.lo, hi: c.hi, futs: make([]jetstream.PubAckFuture, c.hi-c.lo)}
		for i := c.lo; i < c.hi; i++ {
			if ds[i].alertOK && !ds[i].failed {
				ds[i].verdict = r.verdictFor(&ds[i])
				vc.futs[i-c.lo] = r.publishVerdict(&ds[i])
			}
		}
		finish(vc)
	}
	done()
	return failed
}

// collectAlerts waits for the acks of chunk c's alerts and records them in
// ds: alertOK, or failed.
func (r *Role) collectAlerts(ctx context.Context, ds []decision, c *chunk) {
	defer close(c.done)
	for k, f := range c.futs {
		if f == nil {
			continue
		}
		d := &ds[c.lo+k]
		select {
		case ack := <-f.Ok():
			d.alertOK = true
			if !ack.Duplicate {
				r.m.raised.WithLabelValues(string(kindOf(d.act))).Inc()
				if d.act == actDown {
					r.m.lateness.Observe(float64(r.now().UnixNano()-d.downAt) / 1e9)
				}
			}
		case err := <-f.Err():
			r.log.Warn("store alert", "service", d.name, "act", d.act.String(), "err", err)
			d.failed = true
		case <-ctx.Done():
			d.failed = true
		}
	}
	c.futs = nil
}

// writeVerdicts stores each decision's verdict with compare-and-set on the
// revision the decision was based on.
func (r *Role) writeVerdicts(ctx context.Context, ds []decision) {
	futs := make([]jetstream.PubAckFuture, len(ds))
	for i := range ds {
		futs[i] = r.publishVerdict(&ds[i])
	}
	r.awaitVerdicts(ctx, ds, futs)
}

// publishVerdict starts the compare-and-set write of d's verdict, or returns
// nil when there is none to write.
func (r *Role) publishVerdict(d *decision) jetstream.PubAckFuture {
	if d.verdict == nil || d.failed {
		return nil
	}
	b, _ := json.Marshal(d.verdict)
	m := &nats.Msg{Subject: "$KV." + vigil.BucketServices + "." + d.token, Data: b}
	f, err := r.a.JS.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(d.vRev),
		jetstream.WithStallWait(5*time.Second))
	if err != nil {
		d.failed = true
		return nil
	}
	return f
}

// awaitVerdicts collects the acks of verdict writes into ds.
func (r *Role) awaitVerdicts(ctx context.Context, ds []decision, futs []jetstream.PubAckFuture) {
	for i, f := range futs {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			ds[i].newRev = ack.Sequence
		case err := <-f.Err():
			if isWrongSeq(err) {
				ds[i].newRev = 0 // lost a race: re-read below
			} else {
				r.log.Warn("store verdict", "service", ds[i].name, "err", err)
				ds[i].failed = true
			}
		case <-ctx.Done():
			ds[i].failed = true
		}
	}
}

// settle folds the written verdicts into the view, re-reads verdicts that
// lost a compare-and-set race, and re-schedules every entry. It returns the
// number of failed decisions, which stay due and are retried.
func (r *Role) settle(ctx context.Context, ds []decision) int {
	var reread []*decision
	failed := 0
	now := r.now().UnixNano()
	r.mu.Lock()
	for i := range ds {
		d := &ds[i]
		switch {
		case d.failed:
			failed++
		case d.verdict != nil && d.newRev > 0:
			r.t.applyVerdict(d.token, d.name, d.verdict, d.newRev, now)
		case d.verdict != nil:
			reread = append(reread, d)
		}
		if r.t.byToken[d.token] == d.e {
			r.t.schedule(d.e, now)
		}
	}
	r.mu.Unlock()
	for _, d := range reread {
		e, err := r.a.Services.Get(ctx, d.token)
		if err != nil {
			failed++
			continue
		}
		var v vigil.Verdict
		if json.Unmarshal(e.Value(), &v) == nil {
			r.mu.Lock()
			r.t.applyVerdict(d.token, d.name, &v, e.Revision(), r.now().UnixNano())
			r.mu.Unlock()
		}
	}
	return failed
}

func kindOf(a action) vigil.AlertKind {
	if a == actRecover {
		return vigil.AlertRecovered
	}
	return vigil.AlertDown
}

// alertFor builds the alert of a decision, or nil when it raises none.
func (r *Role) alertFor(d *decision, batch string, batchSize int) *vigil.Alert {
	switch d.act {
	case actDown:
		last, dl := unixNano(d.at), unixNano(d.dl)
		return &vigil.Alert{
			ID: "down:" + d.token + ":" + fmt.Sprint(d.seq), Kind: vigil.AlertDown, Service: d.name,
			Title: d.name + " is down",
			Message: fmt.Sprintf("%s has not pulsed since %s; its next pulse was due at %s.",
				d.name, last.Format(time.RFC3339), dl.Format(time.RFC3339)),
			Level: vigil.LevelError, Owner: d.owner, Host: d.host, Origin: d.origin, At: r.now().UTC(),
			LastPulse: last, Deadline: unixNano(d.downAt), DownSeq: d.seq, Batch: batch, BatchSize: batchSize,
		}
	case actRecover:
		since := unixNano(d.vSince)
		down := unixNano(d.at).Sub(since).Round(time.Second)
		return &vigil.Alert{
			ID: "recovered:" + d.token + ":" + fmt.Sprint(d.vDown), Kind: vigil.AlertRecovered, Service: d.name,
			Title:   d.name + " recovered",
			Message: fmt.Sprintf("%s is pulsing again after being down for %s.", d.name, down),
			Level:   vigil.LevelInfo, Owner: d.owner, Host: d.host, Origin: d.origin, At: r.now().UTC(),
			LastPulse: unixNano(d.at), DownSince: since, DownSeq: d.vDown,
		}
	}
	return nil
}

// verdictFor builds the verdict a decision writes.
func (r *Role) verdictFor(d *decision) *vigil.Verdict {
	v := &vigil.Verdict{Service: d.name, Seq: d.seq, LastPulse: unixNano(d.at), Deadline: unixNano(d.dl), Owner: d.owner}
	switch d.act {
	case actRegister:
		v.Status, v.Since, v.Reason = vigil.StatusUp, r.upSince(d), "pulse"
	case actRecover:
		v.Status, v.Since, v.Reason = vigil.StatusUp, unixNano(d.at), "recovered"
	case actCancel:
		v.Status, v.Since, v.Reason, v.DownSeq = vigil.StatusCancelled, unixNano(d.cancel), "cancelled", d.vDown
	case actDown:
		v.Status, v.Since, v.Reason, v.DownSeq = vigil.StatusDown, unixNano(d.downAt), "no pulse", d.seq
	default:
		return nil
	}
	return v
}

// upSince keeps the start of an unbroken up period; otherwise the pulse time.
func (r *Role) upSince(d *decision) time.Time {
	if d.vStatus == vigil.StatusUp && d.vSince != 0 {
		return unixNano(d.vSince)
	}
	return unixNano(d.at)
}

func (r *Role) publishAlertAsync(a *vigil.Alert) (jetstream.PubAckFuture, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: vigil.AlertSubject(a.Kind, a.Service), Data: b}
	return r.a.JS.PublishMsgAsync(m, jetstream.WithMsgID(a.ID), jetstream.WithStallWait(5*time.Second))
}

func (r *Role) publishAlert(ctx context.Context, a *vigil.Alert) (*jetstream.PubAck, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return r.a.JS.Publish(ctx, vigil.AlertSubject(a.Kind, a.Service), b, jetstream.WithMsgID(a.ID))
}
