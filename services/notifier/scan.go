package notifier

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// scanBack reads the messages of stream that match filters (all when
// empty) with a sequence below before (0: the end of the stream), newest
// first, and passes each to keep until keep has accepted limit of them, the
// stream's start is reached, or about maxScan sequences were looked at. It
// returns the sequence to resume below for the next page, 0 when there is
// none. JetStream reads only forwards, so it reads windows of growing size
// backwards from before, each with a short-lived ephemeral consumer that
// the server filters by subject.
func scanBack(ctx context.Context, js jetstream.JetStream, stream string, filters []string, before uint64, limit, maxScan int,
	keep func(*jetstream.RawStreamMsg) bool,
) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return 0, nil
	}
	first := max(st.FirstSeq, 1)
	hi := st.LastSeq + 1
	if before > 0 && before < hi {
		hi = before
	}
	kept, scanned := 0, 0
	chunk := uint64(max(4*limit, 256))
	for hi > first {
		lo := first
		if hi-first > chunk {
			lo = hi - chunk
		}
		msgs, err := readRange(ctx, s, filters, lo, hi)
		if err != nil {
			return 0, err
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			if !keep(msgs[i]) {
				continue
			}
			if kept++; kept == limit {
				if msgs[i].Sequence <= first {
					return 0, nil
				}
				return msgs[i].Sequence, nil
			}
		}
		scanned += int(hi - lo)
		hi = lo
		if scanned >= maxScan && hi > first {
			return hi, nil
		}
		chunk = min(4*chunk, uint64(maxScan))
	}
	return 0, nil
}

// readRange returns the messages matching filters with lo ≤ sequence < hi,
// in stream order.
func readRange(ctx context.Context, s jetstream.Stream, filters []string, lo, hi uint64) ([]*jetstream.RawStreamMsg, error) {
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       lo,
		FilterSubjects:    filters,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.CachedInfo().Config.Name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name) // best effort: it expires when inactive anyway
	}()
	pending := c.CachedInfo().NumPending
	var out []*jetstream.RawStreamMsg
	for pending > 0 {
		b, err := c.Fetch(int(min(pending, 1000)), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.CachedInfo().Config.Name, err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = md.NumPending
			if md.Sequence.Stream >= hi {
				pending = 0
				continue
			}
			out = append(out, &jetstream.RawStreamMsg{
				Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Data: m.Data(), Time: md.Timestamp,
			})
		}
		if err := b.Error(); err != nil {
			return nil, fmt.Errorf("read %s: %w", s.CachedInfo().Config.Name, err)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}
