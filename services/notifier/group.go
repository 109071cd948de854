package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// groupLookBack is how far before the stored time of the alert that
// created a grouped job the batch's other alerts are looked for: a sweep
// stores its alerts within a second or two, and a job may have been created
// by any of them.
const groupLookBack = time.Minute

// groupCache keeps the complete batches this replica has read, so the jobs
// of many receivers of one mass outage read the alerts once.
type groupCache struct {
	mu sync.Mutex
	m  map[string]groupEntry
}

type groupEntry struct {
	alerts []vigil.Alert
	at     time.Time
}

func newGroupCache() *groupCache { return &groupCache{m: map[string]groupEntry{}} }

// members returns the alerts of grouped job j's batch stored so far, and
// whether that is all of them (BatchSize).
func (r *Role) members(ctx context.Context, j *Job) ([]vigil.Alert, bool, error) {
	key := alertKey(&j.Alert, true)
	r.groups.mu.Lock()
	e, ok := r.groups.m[key]
	r.groups.mu.Unlock()
	if ok {
		return e.alerts, true, nil
	}
	s := r.deps.Assets.Alerts
	from := j.Stored.Add(-groupLookBack)
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &from,
		FilterSubjects:    []string{"vigil.alert." + string(j.Alert.Kind) + ".>"},
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, false, fmt.Errorf("read batch %s: %w", j.Alert.Batch, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	var out []vigil.Alert
	seen := map[string]bool{}
	pending := c.CachedInfo().NumPending
	for pending > 0 {
		b, err := c.Fetch(int(min(pending, 1000)), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("read batch %s: %w", j.Alert.Batch, err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			var a vigil.Alert
			if json.Unmarshal(m.Data(), &a) != nil || a.Batch != j.Alert.Batch || seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			out = append(out, a)
		}
		if err := b.Error(); err != nil {
			return nil, false, fmt.Errorf("read batch %s: %w", j.Alert.Batch, err)
		}
		if n == 0 {
			break
		}
	}
	complete := len(out) >= j.Alert.BatchSize
	if complete {
		now := r.now()
		r.groups.mu.Lock()
		for k, e := range r.groups.m {
			if now.Sub(e.at) > 10*time.Minute {
				delete(r.groups.m, k)
			}
		}
		r.groups.m[key] = groupEntry{alerts: out, at: now}
		r.groups.mu.Unlock()
	}
	return out, complete, nil
}
