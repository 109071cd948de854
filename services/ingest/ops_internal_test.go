package ingest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// TestWrongLastSeq checks that the conflict cancel retries on is the one
// JetStream reports for a stale expected revision, and nothing else.
func TestWrongLastSeq(t *testing.T) {
	a := bustest.New(t).Provision(t)
	ctx := context.Background()
	subj := vigil.PulseSubject("x")
	ack, err := a.JS.Publish(ctx, subj, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.JS.Publish(ctx, subj, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	_, err = a.JS.Publish(ctx, subj, []byte(`{}`), jetstream.WithExpectLastSequencePerSubject(ack.Sequence))
	if !wrongLastSeq(err) {
		t.Errorf("wrongLastSeq(%v) = false for a stale revision, want true", err)
	}
	_, err = a.JS.Publish(ctx, "nowhere.at.all", []byte(`{}`))
	if err == nil || wrongLastSeq(err) {
		t.Errorf("wrongLastSeq(%v) = true or no error for a subject without a stream, want false", err)
	}
}
