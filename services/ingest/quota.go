package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus"
)

// headerToken names the API token that sent a pulse, on the pulse's KV
// message, when Config.MaxServicesPerToken is on. It is how every ingest
// replica, and a restarted one, learns who owns each service.
const headerToken = "Vigil-Token"

// errQuota is a pulse for a new service from a token that already owns
// MaxServicesPerToken services; answered 403.
var errQuota = errors.New("service quota reached")

// quota counts the services each API token owns, for
// Config.MaxServicesPerToken. A service belongs to the token named in the
// Vigil-Token header of the latest pulse that carried one: a pulse from
// another token moves it, a cancel or a pulse without a token (direct NATS,
// legacy listeners, an open API) leaves it where it is, and only deleting
// the KV key (nats kv del vigil_pulses <token>) frees it. Pulses without a
// token are not limited. The counts come from following the KV bucket's
// stream (last message per key), so they survive restarts and agree
// across replicas; a replica also counts the new services it accepts at
// once, so a burst from one token cannot overshoot on one replica. Two
// replicas accepting at the same instant can overshoot by what they
// accept before seeing each other's messages.
type quota struct {
	max int

	mu     sync.Mutex
	ready  bool
	owner  map[string]string // KV key (service token) → API token name
	counts map[string]int    // API token name → services owned
}

func newQuota(limit int) *quota {
	return &quota{max: limit, owner: map[string]string{}, counts: map[string]int{}}
}

// admit checks pulses from the token of ctx and counts the new services
// among them; it returns the keys it counted, for release, or an error:
// errQuota (403) past the limit, vigil.ErrUnavailable (503) while the
// counts are still loading.
func (q *quota) admit(ctx context.Context, pulses []vigil.Pulse) ([]string, error) {
	tok := auth.TokenName(ctx)
	if tok == "" {
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ready {
		return nil, fmt.Errorf("counting the services per token, retry: %w", vigil.ErrUnavailable)
	}
	var added []string
	seen := map[string]bool{}
	for i := range pulses {
		key := vigil.Token(pulses[i].Service)
		if _, ok := q.owner[key]; ok || seen[key] {
			continue
		}
		if q.counts[tok]+len(added) >= q.max {
			return nil, fmt.Errorf("token %q already tracks %d services, the most a token may (--max-services-per-token); "+
				"pulse an existing service or ask an administrator to delete unused ones: %w", tok, q.counts[tok], errQuota)
		}
		seen[key] = true
		added = append(added, key)
	}
	for _, k := range added {
		q.owner[k] = tok
	}
	q.counts[tok] += len(added)
	return added, nil
}

// release forgets services admit counted whose pulses were not stored.
func (q *quota) release(ctx context.Context, keys []string) {
	tok := auth.TokenName(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range keys {
		if q.owner[k] == tok {
			delete(q.owner, k)
			q.counts[tok]--
		}
	}
}

// apply updates the counts with one stored message of the pulses bucket.
func (q *quota) apply(key string, h nats.Header) {
	q.mu.Lock()
	defer q.mu.Unlock()
	old, known := q.owner[key]
	switch h.Get("KV-Operation") {
	case "DEL", "PURGE":
		if known {
			delete(q.owner, key)
			if old != "" {
				q.counts[old]--
			}
		}
		return
	}
	tok := h.Get(headerToken)
	if known && (tok == "" || tok == old) {
		return
	}
	if known && old != "" {
		q.counts[old]--
	}
	q.owner[key] = tok
	if tok != "" {
		q.counts[tok]++
	}
}

// follow feeds the counts from the pulses bucket's stream (one message per
// key, then every new one; bus.Follow) until ctx ends. admit refuses until
// the keys stored at start have been read. It fails when the consumer
// cannot be made.
func (q *quota) follow(ctx context.Context, js jetstream.JetStream) error {
	prefix := "$KV." + vigil.BucketPulses + "."
	f, err := bus.Follow(ctx, js, "KV_"+vigil.BucketPulses, nil, func(m jetstream.Msg) {
		q.apply(strings.TrimPrefix(m.Subject(), prefix), m.Headers())
	})
	if err != nil {
		return fmt.Errorf("ingest: service quota: %w", err)
	}
	defer f.Stop()
	select {
	case <-f.CaughtUp():
		q.mu.Lock()
		q.ready = true
		q.mu.Unlock()
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}
