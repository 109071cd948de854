package watchdog

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// mark is the value of the lease and of the liveness mark.
type mark struct {
	Instance string    `json:"instance"`
	At       time.Time `json:"at"`
}

func (r *Role) markJSON() []byte {
	b, _ := json.Marshal(mark{Instance: r.cfg.Instance, At: r.now().UTC()})
	return b
}

func (r *Role) leaseTTL() time.Duration {
	if d := r.a.Config.LeaseTTL; d > 0 {
		return d
	}
	return 3 * time.Second
}

// acquire campaigns until this replica holds the lease and returns its
// revision. The lease key lives in a bucket whose max age is the lease TTL:
// a leader that stops renewing loses it when its last renewal ages out, and
// kv.Create succeeds for exactly one candidate after that. It fails only when
// ctx ends.
func (r *Role) acquire(ctx context.Context) (uint64, error) {
	retry := min(max(r.leaseTTL()/8, 50*time.Millisecond), 500*time.Millisecond)
	for {
		rev, err := r.a.Leases.Create(ctx, vigil.KeyWatchdogLease, r.markJSON())
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			r.log.Warn("watchdog lease campaign", "err", err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(retry):
		}
	}
}

// lead runs one term as leader: it renews the lease, catches up, handles a
// monitoring gap, and sweeps deadlines until the lease is lost or ctx ends.
// On ctx's end it releases the lease so a standby takes over at once.
func (r *Role) lead(ctx context.Context, rev uint64) {
	lctx, lose := context.WithCancel(ctx)
	defer lose()
	r.m.takeover.Inc()
	r.log.Info("watchdog leader", "instance", r.cfg.Instance)
	// Read the previous liveness mark before this term overwrites it.
	prev, err := r.a.Runtime.Get(ctx, vigil.KeyWatchdogAlive)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		r.log.Warn("read liveness mark", "err", err)
		return
	}

	var (
		mu     sync.Mutex
		lastOK = time.Now()
		cur    = rev
	)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		every := r.leaseTTL() / 3
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tk.C:
			}
			cctx, cancel := context.WithTimeout(lctx, every)
			nrev, err := r.a.Leases.Update(cctx, vigil.KeyWatchdogLease, r.markJSON(), cur)
			cancel()
			mu.Lock()
			switch {
			case err == nil:
				cur, lastOK = nrev, time.Now()
				r.writeAlive(lctx)
			case isWrongSeq(err):
				r.log.Warn("watchdog lease lost to another replica")
				lose()
			case time.Since(lastOK) > r.leaseTTL()-every:
				// Step down before the lease can expire under us, so two
				// leaders overlap as little as possible.
				r.log.Warn("watchdog lease not renewed in time, stepping down", "err", err)
				lose()
			}
			mu.Unlock()
		}
	}()

	r.leader.Store(true)
	defer r.leader.Store(false)
	if err := r.takeOver(lctx, prev); err == nil {
		r.sweepLoop(lctx)
	}
	lose()
	<-renewed

	if ctx.Err() != nil {
		// Clean stop: leave a fresh liveness mark and hand the lease over.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		r.writeAlive(cctx)
		mu.Lock()
		_ = r.a.Leases.Delete(cctx, vigil.KeyWatchdogLease, jetstream.LastRevision(cur))
		mu.Unlock()
		r.log.Info("watchdog lease released", "instance", r.cfg.Instance)
	}
}

func (r *Role) writeAlive(ctx context.Context) {
	if _, err := r.a.Runtime.Put(ctx, vigil.KeyWatchdogAlive, r.markJSON()); err != nil && ctx.Err() == nil {
		r.log.Warn("watchdog liveness mark", "err", err)
	}
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	// Single-node streams answer 10071, replicated ones 10164.
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
