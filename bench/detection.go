package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// detected is what one detection run measured.
type detected struct {
	services, dead       int
	missed, falsed, dups int
	lateSends            int           // services the load generator itself pulsed too late
	p50, p99, max        float64       // lateness, ms
	publishSlip          time.Duration // schedule slip; with mass, how long storing every pulse took
	verdictsIn           time.Duration // mass: last verdict stored, after the deadline; -1 when not seen
	lateness             []time.Duration
}

// runDetection measures how late down alerts are stored after deadline +
// grace, for each N of Scale.Sweep (and Scale.Services), then the mass
// expiry of Scale.MassServices at once, then the watchdog's heap at
// Scale.Services. With Services 0 and no Sweep (vigil-bench --mass-only)
// it runs the mass expiry alone.
func runDetection(ctx context.Context, e *env, r *Result) error {
	sc := e.sc
	sweep := slices.Clone(sc.Sweep)
	if sc.Services > 0 && !slices.Contains(sweep, sc.Services) {
		sweep = append(sweep, sc.Services)
	}
	slices.Sort(sweep)
	var slip time.Duration
	for _, n := range sweep {
		e.logf("detection: %d services pulsing every %v (grace %v), 1 in %d goes silent", n, sc.Period, sc.Grace, sc.Silent)
		d, err := detect(ctx, e, n, sc.Period, sc.Grace, false)
		if err != nil {
			return fmt.Errorf("%d services: %w", n, err)
		}
		e.logf("detection: %d services: %d dead, p50 %.1f ms, p99 %.1f ms, max %.1f ms, missed %d, false %d", n, d.dead, d.p50, d.p99, d.max, d.missed, d.falsed)
		slip = max(slip, d.publishSlip)
		r.point("p50", float64(n), d.p50)
		r.point("p99", float64(n), d.p99)
		r.point("max", float64(n), d.max)
		if n != sc.Services {
			r.add(fmt.Sprintf("lateness_p99_n%d", n), d.p99, "ms")
			continue
		}
		r.add("services", float64(n), "services").Note = fmt.Sprintf("pulse every %v, grace %v", sc.Period, sc.Grace)
		r.add("silent", float64(d.dead), "services")
		r.add("lateness_p50", d.p50, "ms")
		r.add("lateness_p99", d.p99, "ms").Goal = "≤ 500 ms"
		r.add("lateness_max", d.max, "ms")
		r.add("missed_deaths", float64(d.missed), "count").Goal = "0"
		r.add("false_deaths", float64(d.falsed), "count").Goal = "0"
		r.add("duplicate_deaths", float64(d.dups), "count").Goal = "0"
		r.add("late_sends", float64(d.lateSends), "services").Note = "pulsed too late by the load generator (busy machine): their deaths are right, not counted as false"
	}
	period := sc.MassPeriod
	e.logf("detection: mass expiry of %d services (next_in %v, no grace)", sc.MassServices, period)
	d, err := detect(ctx, e, sc.MassServices, period, 0, true)
	if err != nil {
		return fmt.Errorf("mass expiry: %w", err)
	}
	r.add("mass_services", float64(d.services), "services")
	r.add("mass_stored_in", float64(d.publishSlip)/float64(time.Millisecond), "ms").Note = fmt.Sprintf("storing every pulse, of the %v to the deadline", period)
	r.add("mass_lateness_p50", d.p50, "ms")
	r.add("mass_lateness_max", d.max, "ms").Goal = "≤ 3,000 ms"
	r.add("mass_verdicts_stored_in", float64(d.verdictsIn)/float64(time.Millisecond), "ms").Note = "after the deadline: when the last down verdict was stored (alerts go first)"
	r.add("mass_missed", float64(d.missed), "count").Goal = "0"
	r.add("mass_duplicates", float64(d.dups), "count").Goal = "0"
	if d.missed > 0 || d.falsed > 0 {
		return fmt.Errorf("mass expiry: %d missed, %d false deaths", d.missed, d.falsed)
	}
	if sc.Services == 0 {
		return nil
	}
	e.logf("detection: watchdog heap at %d services", sc.Services)
	per, took, err := watchdogMemory(ctx, e, sc.Services)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	mv := r.add("watchdog_heap_per_service", per, "B")
	mv.Goal, mv.Note = "≤ 1 KiB", "fixed costs (consumer buffers) dominate below ~50,000 services"
	r.add("watchdog_catch_up", float64(took)/float64(time.Millisecond), "ms").Note = fmt.Sprintf("start to ready on %d services", sc.Services)
	r.add("pulse_schedule_slip_max", float64(slip)/float64(time.Millisecond), "ms").Note = "how late the load generator sent its pulses"
	for _, m := range r.Metrics {
		if (m.Name == "missed_deaths" || m.Name == "false_deaths") && m.Value > 0 {
			return fmt.Errorf("%s = %v, want 0", m.Name, m.Value)
		}
	}
	return nil
}

// detect runs one watchdog on a fresh embedded JetStream. n services pulse
// straight into the pulses bucket (as ingest would), spread evenly over
// period, for three periods; one in Scale.Silent pulses only in the first.
// With mass, every service pulses once with the same At and then all go
// silent. Lateness is each down alert's stream timestamp minus the last
// pulse's At + next_in + grace.
func detect(ctx context.Context, e *env, n int, period, grace time.Duration, mass bool) (*detected, error) {
	st, err := startStack(ctx, filepath.Join(e.tmp, fmt.Sprintf("detect-%d-%v", n, mass)), stackConfig{watchdog: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.stop() }()
	js := st.assets.JS

	var mu sync.Mutex
	stored := map[string]time.Time{}
	dups := 0
	notify := make(chan struct{}, 1)
	oc, err := js.OrderedConsumer(ctx, vigil.StreamAlerts, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"vigil.alert.down.>"}})
	if err != nil {
		return nil, err
	}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		var al vigil.Alert
		if json.Unmarshal(m.Data(), &al) != nil {
			return
		}
		md, err := m.Metadata()
		if err != nil {
			return
		}
		mu.Lock()
		if _, ok := stored[al.Service]; ok {
			dups++
		}
		stored[al.Service] = md.Timestamp
		mu.Unlock()
		select {
		case notify <- struct{}{}:
		default:
		}
	}, jetstream.PullExpiry(time.Second))
	if err != nil {
		return nil, err
	}
	defer cc.Stop()

	silent := max(1, e.sc.Silent)
	dead := func(i int) bool { return mass || i%silent == 7%silent }
	names := make([]string, n)
	last := make([]time.Time, n)
	late := make([]bool, n) // a gap between two sends exceeded next_in + grace
	for i := range names {
		names[i] = fmt.Sprintf("svc-%06d", i)
	}
	g := vigil.Seconds(grace)
	send := func(i int, at time.Time) error {
		body, err := json.Marshal(vigil.Record{
			Op: vigil.OpPulse, At: at,
			Pulse: vigil.Pulse{Service: names[i], NextIn: vigil.Seconds(period), Grace: &g},
		})
		if err != nil {
			return err
		}
		if !last[i].IsZero() && time.Since(last[i]) > period+grace {
			late[i] = true
		}
		last[i] = at
		return publishAsync(ctx, js, vigil.PulseSubject(names[i]), body)
	}
	d := &detected{services: n}
	if mass {
		at := time.Now().UTC()
		for i := range n {
			if err := send(i, at); err != nil {
				return nil, err
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		d.publishSlip = time.Since(at)
	} else {
		const slots = 100
		tick := period / slots
		start := time.Now()
		for c := range 3 {
			for slot := range slots {
				due := start.Add(time.Duration(c)*period + time.Duration(slot)*tick)
				sleep(ctx, time.Until(due))
				d.publishSlip = max(d.publishSlip, time.Since(due))
				now := time.Now().UTC()
				for i := slot; i < n; i += slots {
					if c == 0 || !dead(i) {
						if err := send(i, now); err != nil {
							return nil, err
						}
					}
				}
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for i := range n {
		if dead(i) {
			d.dead++
		}
	}
	// Wait for every planned death, bounded.
	limit := time.After(period + grace + 30*time.Second + time.Duration(n)*time.Millisecond)
wait:
	for {
		mu.Lock()
		got := len(stored)
		mu.Unlock()
		if got >= d.dead {
			break
		}
		select {
		case <-notify:
		case <-limit:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	mu.Lock()
	for i, name := range names {
		at, ok := stored[name]
		switch {
		case dead(i) && !ok:
			d.missed++
		case !dead(i) && ok && late[i]:
			d.lateSends++ // the load generator's fault, not a false death
		case !dead(i) && ok:
			d.falsed++
		case ok:
			d.lateness = append(d.lateness, at.Sub(last[i].Add(period+grace)))
		}
	}
	d.dups = dups
	mu.Unlock()
	if mass {
		if d.verdictsIn, err = verdictsStored(ctx, js, uint64(2*n), last[0].Add(period+grace)); err != nil {
			return nil, err
		}
	}
	cc.Stop()
	q := quantiles(d.lateness, 0.5, 0.99, 1)
	d.p50, d.p99, d.max = q[0], q[1], q[2]
	return d, st.stop()
}

// verdictsStored waits (up to 30 s) until the verdicts bucket holds want
// writes and returns how long after deadline the last one was stored, or -1
// if it never got there.
func verdictsStored(ctx context.Context, js jetstream.JetStream, want uint64, deadline time.Time) (time.Duration, error) {
	limit := time.After(30 * time.Second)
	for {
		s, err := js.Stream(ctx, "KV_"+vigil.BucketServices)
		if err != nil {
			return 0, err
		}
		if st := s.CachedInfo().State; st.LastSeq >= want {
			return st.LastTime.Sub(deadline), nil
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-limit:
			return -1, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// watchdogMemory stores n pulses due in an hour on a fresh embedded
// JetStream, then starts a watchdog and returns the heap it added once it
// has caught up on the pulses bucket, per service, and how long catching up
// took. Nothing falls due, so the watchdog only holds its view.
func watchdogMemory(ctx context.Context, e *env, n int) (perService float64, catchUp time.Duration, err error) {
	st, err := startStack(ctx, filepath.Join(e.tmp, "memory"), stackConfig{})
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = st.stop() }()
	js := st.assets.JS
	g := vigil.Seconds(30 * time.Second)
	now := time.Now().UTC()
	for i := range n {
		name := fmt.Sprintf("service-%07d.example", i)
		body, err := json.Marshal(vigil.Record{Op: vigil.OpPulse, At: now, Pulse: vigil.Pulse{
			Service: name, NextIn: vigil.Seconds(time.Hour), Grace: &g, Host: fmt.Sprintf("host-%d", i%5000),
			Owner: &vigil.Owner{Type: vigil.ChannelMail, Target: fmt.Sprintf("team-%d@example.com", i%100)},
		}})
		if err != nil {
			return 0, 0, err
		}
		if err := publishAsync(ctx, js, vigil.PulseSubject(name), body); err != nil {
			return 0, 0, err
		}
	}
	if err := awaitAsync(ctx, js); err != nil {
		return 0, 0, err
	}
	a, err := st.provision(ctx, "watchdog")
	if err != nil {
		return 0, 0, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg := watchdog.DefaultConfig()
	cfg.Instance = "memory"
	w, err := watchdog.New(cfg, watchdog.Deps{Conn: st.conns[len(st.conns)-1], Assets: a, Log: quiet, Metrics: prometheus.NewRegistry()})
	if err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithCancel(ctx)
	var runErr error
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		runErr = w.Run(wctx)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	for w.Ready(ctx) != nil {
		select {
		case <-stopped:
			return 0, 0, fmt.Errorf("watchdog stopped: %w", runErr)
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	catchUp = time.Since(start)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(w)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n), catchUp, nil
}
