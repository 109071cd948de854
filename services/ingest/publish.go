package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Tuning of the shared publisher.
const (
	// maxInFlight is the most messages published and not yet acknowledged,
	// across all requests; a request past it waits for acks (nats.go's
	// async publisher allows 4,000).
	maxInFlight = 4096
	// noResponderRetries and noResponderWait are how often, and after how
	// long, a message answered "no responders" (a stream between leaders)
	// is published again, as nats.go's JetStream publish does by default.
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
)

// pubAck is the outcome of one message of a publish: its stream sequence,
// whether JetStream found it a duplicate (Nats-Msg-Id within the dedup
// window), or the error.
type pubAck struct {
	seq uint64
	dup bool
	err error
}

// publisher stores messages in JetStream for every concurrent request of
// the role over one reply subscription: each message is published on core
// NATS with a reply subject <inbox>.<id>, and the PubAcks of all requests
// come back on the one wildcard subscription <inbox>.*, which hands each
// to the request waiting for it (group commit of the acks). A request
// thus costs one map entry per message and one channel, instead of a
// response channel, a timer and a JSON decode per message as with
// jetstream.PublishMsg. It gives the same guarantee: a message counts as
// stored only once its PubAck has arrived.
type publisher struct {
	nc     *nats.Conn
	prefix string // "<inbox>."
	sem    chan struct{}

	mu      sync.Mutex
	next    uint64
	pending map[uint64]slot
}

// slot is where the ack of one message goes: item i of waiter w.
type slot struct {
	w *waiter
	i int
}

// waiter is one publish call's messages in flight.
type waiter struct {
	acks []pubAck
	ids  []uint64 // id of each message in flight, 0 once settled
	left int      // messages in flight; guarded by publisher.mu
	sent bool     // every message has been published; guarded by publisher.mu
	done chan struct{}
}

// newPublisher subscribes to a fresh inbox wildcard on nc. It fails when
// the subscription cannot be made (connection closed).
func newPublisher(nc *nats.Conn) (*publisher, error) {
	p := &publisher{
		nc:      nc,
		prefix:  nc.NewInbox() + ".",
		sem:     make(chan struct{}, maxInFlight),
		pending: make(map[uint64]slot),
	}
	sub, err := nc.Subscribe(p.prefix+"*", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("ack subscription: %w", err)
	}
	// The semaphore bounds the acks outstanding, so the subscription never
	// holds more than maxInFlight of them.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("ack subscription: %w", err)
	}
	return p, nil
}

// publish stores msgs (each with its Subject, Data and Header; Reply is
// overwritten) and returns one pubAck per message, in order, after every
// message is acknowledged or has failed. A message answered "no
// responders" is published again up to noResponderRetries times,
// noResponderWait apart. When ctx ends first it returns ctx.Err(); the
// acks that arrived are in acks, the other entries have err set.
func (p *publisher) publish(ctx context.Context, msgs []*nats.Msg) (acks []pubAck, err error) {
	w := &waiter{acks: make([]pubAck, len(msgs)), ids: make([]uint64, len(msgs))}
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; ; attempt++ {
		if err := p.round(ctx, w, msgs, todo); err != nil {
			return w.acks, err
		}
		retry := todo[:0]
		for _, i := range todo {
			if errors.Is(w.acks[i].err, nats.ErrNoResponders) {
				retry = append(retry, i)
			}
		}
		if len(retry) == 0 || attempt == noResponderRetries {
			return w.acks, nil
		}
		t := time.NewTimer(noResponderWait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return w.acks, ctx.Err()
		}
		todo = retry
	}
}

// round publishes msgs[i] for every i of todo and waits for their acks.
func (p *publisher) round(ctx context.Context, w *waiter, msgs []*nats.Msg, todo []int) error {
	w.done = make(chan struct{})
	p.mu.Lock()
	w.sent, w.left = false, 0
	p.mu.Unlock()
	var buf [20]byte
	var stopped error
	for k, i := range todo {
		// A request whose time is up publishes nothing more, even when a
		// place is free.
		if stopped = ctx.Err(); stopped == nil {
			select {
			case p.sem <- struct{}{}:
			case <-ctx.Done():
				stopped = ctx.Err()
			}
		}
		if stopped != nil {
			for _, j := range todo[k:] {
				w.acks[j] = pubAck{err: stopped}
			}
			break
		}
		p.mu.Lock()
		p.next++
		id := p.next
		p.pending[id] = slot{w, i}
		w.ids[i] = id
		w.left++
		p.mu.Unlock()
		m := msgs[i]
		m.Reply = p.prefix + string(strconv.AppendUint(buf[:0], id, 10))
		if err := p.nc.PublishMsg(m); err != nil {
			p.settle(id, pubAck{err: err})
		}
	}
	p.mu.Lock()
	w.sent = true
	if w.left == 0 {
		close(w.done)
	}
	p.mu.Unlock()
	select {
	case <-w.done:
		return stopped
	case <-ctx.Done():
	}
	// Give up on the acks still outstanding: forget their ids, so a late
	// ack is dropped, and free their places.
	p.mu.Lock()
	for _, i := range todo {
		if id := w.ids[i]; id != 0 {
			if _, ok := p.pending[id]; ok {
				delete(p.pending, id)
				<-p.sem
			}
			w.ids[i] = 0
			w.acks[i] = pubAck{err: ctx.Err()}
		}
	}
	p.mu.Unlock()
	return ctx.Err()
}

// settle records the outcome of message id, if still awaited, and wakes its
// waiter when it was the last one.
func (p *publisher) settle(id uint64, a pubAck) {
	p.mu.Lock()
	s, ok := p.pending[id]
	if ok {
		delete(p.pending, id)
		w := s.w
		w.acks[s.i] = a
		w.ids[s.i] = 0
		w.left--
		if w.left == 0 && w.sent {
			close(w.done)
		}
	}
	p.mu.Unlock()
	if ok {
		<-p.sem
	}
}

// onAck handles one reply on the inbox: a PubAck, a JetStream API error,
// or a "no responders" status.
func (p *publisher) onAck(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(p.prefix):], 10, 64)
	if err != nil {
		return // not ours
	}
	var a pubAck
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		a.err = nats.ErrNoResponders
	} else {
		a.seq, a.dup, a.err = parseAck(m.Data)
	}
	p.settle(id, a)
}

var (
	ackStart = []byte(`{"stream":"`)
	ackError = []byte(`"error"`)
	ackSeq   = []byte(`"seq":`)
	ackDup   = []byte(`"duplicate":`)
)

// ackDuplicate reports whether a PubAck says "duplicate": true (the
// server writes it with a space).
func ackDuplicate(data []byte) bool {
	k := bytes.Index(data, ackDup)
	if k < 0 {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(data[k+len(ackDup):], " \t\r\n"), []byte("true"))
}

// parseAck reads a JetStream PubAck ({"stream":…,"seq":N,"duplicate":true})
// or API error ({"error":{"code":…,"err_code":…,"description":…}}). The
// common shape is read without reflection; anything else goes through
// encoding/json. An error reply returns *jetstream.APIError.
func parseAck(data []byte) (seq uint64, dup bool, err error) {
	if bytes.HasPrefix(data, ackStart) && !bytes.Contains(data, ackError) {
		if k := bytes.Index(data, ackSeq); k > 0 {
			d := data[k+len(ackSeq):]
			n := 0
			for n < len(d) && d[n] >= '0' && d[n] <= '9' {
				n++
			}
			if n > 0 && n < len(d) && (d[n] == ',' || d[n] == '}') {
				if v, err := strconv.ParseUint(string(d[:n]), 10, 64); err == nil {
					return v, ackDuplicate(data), nil
				}
			}
		}
	}
	var a struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Seq       uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return 0, false, fmt.Errorf("%w: %q: %w", jetstream.ErrInvalidJSAck, data, err)
	}
	if a.Error != nil {
		return 0, false, a.Error
	}
	if a.Stream == "" {
		return 0, false, fmt.Errorf("%w: %q", jetstream.ErrInvalidJSAck, data)
	}
	return a.Seq, a.Duplicate, nil
}
