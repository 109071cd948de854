package bus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follower reads a stream from its first message and then live, in stream
// order, through an ordered consumer (ephemeral, recreated by the client on
// gaps or leader changes, no acks). It is how a role keeps an in-memory view
// of a KV bucket: the buckets have History 1, so reading from the start costs
// one message per key, not the whole past.
type Follower struct {
	caughtUp chan struct{}
	once     sync.Once
	cc       jetstream.ConsumeContext
}

// Follow starts following stream (filtered by subjects, or all of it) and
// calls fn for every message, one at a time, in stream order. CaughtUp is
// closed once every message present when Follow was called has been passed
// to fn. Stop ends it. Errors come from looking up the stream or creating
// the consumer.
func Follow(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, fn func(jetstream.Msg)) (*Follower, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", stream, err)
	}
	f := &Follower{caughtUp: make(chan struct{})}
	last := s.CachedInfo().State.LastSeq
	if len(subjects) > 0 {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(strings.Join(subjects, ",")))
		if err == nil && info.State.Msgs == 0 {
			last = 0
		}
	}
	if last == 0 || s.CachedInfo().State.Msgs == 0 {
		f.markCaughtUp()
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", stream, err)
	}
	f.cc, err = cons.Consume(func(m jetstream.Msg) {
		fn(m)
		if md, err := m.Metadata(); err == nil && (md.NumPending == 0 || md.Sequence.Stream >= last) {
			f.markCaughtUp()
		}
	}, jetstream.PullExpiry(2*time.Second), jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", stream, err)
	}
	return f, nil
}

func (f *Follower) markCaughtUp() { f.once.Do(func() { close(f.caughtUp) }) }

// CaughtUp is closed once the messages present at the start have been handled.
func (f *Follower) CaughtUp() <-chan struct{} { return f.caughtUp }

// Stop stops delivery and waits until fn is no longer running.
func (f *Follower) Stop() {
	f.cc.Stop()
	<-f.cc.Closed()
}
