package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// TestParseAck reads the PubAck shapes nats-server writes (stream.go:
// with and without a domain, the duplicate form with its space) and its
// API errors, and refuses what is neither.
func TestParseAck(t *testing.T) {
	tests := []struct {
		in      string
		seq     uint64
		dup     bool
		errCode jetstream.ErrorCode // 0: no API error
		bad     bool
	}{
		{in: `{"stream":"KV_vigil_pulses","seq":42}`, seq: 42},
		{in: `{"stream":"KV_vigil_pulses","domain":"hub","seq":7}`, seq: 7},
		{in: `{"stream":"KV_vigil_pulses","seq":9,"duplicate": true}`, seq: 9, dup: true},
		{in: `{"stream":"KV_vigil_pulses","seq":9,"duplicate":true}`, seq: 9, dup: true},
		{in: `{"stream":"KV_vigil_pulses","seq":9,"duplicate":false}`, seq: 9},
		{in: `{"stream":"S", "seq": 18446744073709551615}`, seq: 18446744073709551615},
		{in: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"S","seq":0}`, errCode: 10071},
		{in: `{"stream":"S","seq":0,"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`, errCode: 10077},
		{in: `{"seq":5}`, bad: true},
		{in: `not json`, bad: true},
		{in: ``, bad: true},
	}
	for _, tt := range tests {
		seq, dup, err := parseAck([]byte(tt.in))
		var apiErr *jetstream.APIError
		switch {
		case tt.errCode != 0:
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != tt.errCode {
				t.Errorf("parseAck(%s) = %v, want API error %d", tt.in, err, tt.errCode)
			}
		case tt.bad:
			if !errors.Is(err, jetstream.ErrInvalidJSAck) {
				t.Errorf("parseAck(%s) = %d, %v, %v; want ErrInvalidJSAck", tt.in, seq, dup, err)
			}
		case err != nil || seq != tt.seq || dup != tt.dup:
			t.Errorf("parseAck(%s) = %d, %v, %v; want %d, %v", tt.in, seq, dup, err, tt.seq, tt.dup)
		}
	}
}

// TestPublisher stores through the shared publisher: acks in order with
// their sequences, duplicates flagged, a subject no stream listens on
// answered "no responders" after the retries, and nothing left in flight
// once publish returns.
func TestPublisher(t *testing.T) {
	s := bustest.New(t)
	s.Provision(t)
	nc := s.Conn(t)
	p, err := newPublisher(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := func(subject, id string) *nats.Msg {
		m := &nats.Msg{Subject: subject, Data: []byte(`{}`)}
		if id != "" {
			m.Header = nats.Header{jetstream.MsgIDHeader: []string{id}}
		}
		return m
	}
	acks, err := p.publish(ctx, []*nats.Msg{
		msg(vigil.PulseSubject("a"), "id-a"), msg(vigil.PulseSubject("b"), ""), msg(vigil.PulseSubject("a"), "id-a"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []pubAck{{seq: 1}, {seq: 2}, {seq: 1, dup: true}}
	for i, a := range acks {
		if a != want[i] {
			t.Errorf("ack %d = %+v, want %+v", i, a, want[i])
		}
	}
	acks, err = p.publish(ctx, []*nats.Msg{msg("vigil.nowhere", ""), msg(vigil.PulseSubject("c"), "")})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(acks[0].err, nats.ErrNoResponders) {
		t.Errorf("publish to a subject without a stream: %+v, want no responders", acks[0])
	}
	if acks[1] != (pubAck{seq: 3}) {
		t.Errorf("ack after a failed one = %+v, want seq 3", acks[1])
	}
	// A context that ends first: the error is the context's and nothing
	// stays registered.
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := p.publish(done, []*nats.Msg{msg(vigil.PulseSubject("d"), "")}); !errors.Is(err, context.Canceled) {
		t.Errorf("publish with an ended context = %v, want context.Canceled", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) != 0 || len(p.sem) != 0 {
		t.Errorf("after publish: %d acks pending, %d places taken; want 0", len(p.pending), len(p.sem))
	}
}
