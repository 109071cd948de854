package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// DeadLetter is a delivery job that failed for good: a permanent error,
// its last attempt failed, or its channel is not configured. It is a
// message on stream VIGIL_DEAD_LETTERS, subject
// vigil.DeadLetterSubject(channel), JSON-encoded, kept until retried
// (POST /v1/deadletters/{seq}/retry) or aged out (history max age).
type DeadLetter struct {
	Job   Job       `json:"job"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
	// Seq is the dead letter's sequence in VIGIL_DEAD_LETTERS, filled in on
	// read; it names the dead letter in the API.
	Seq uint64 `json:"seq,omitempty"`
}

// publishDeadLetter stores job j with its last error on the dead letters
// and waits for the ack. The message id is the job message's id plus
// ".dead", so a job that is dead-lettered again after a crash is stored
// once.
func publishDeadLetter(ctx context.Context, js jetstream.JetStream, j *Job, cause error, at time.Time) error {
	data, err := json.Marshal(DeadLetter{Job: *j, Error: cause.Error(), At: at.UTC()})
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	m := &nats.Msg{Subject: vigil.DeadLetterSubject(j.Channel), Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, j.msgID()+".dead")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("store dead letter: %w", err)
	}
	return nil
}

func decodeDeadLetter(m *jetstream.RawStreamMsg) (DeadLetter, error) {
	var d DeadLetter
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return d, fmt.Errorf("decode dead letter %d: %w", m.Sequence, err)
	}
	d.Seq = m.Sequence
	return d, nil
}

// retryDeadLetter re-queues dead letter seq as a new job message with a
// fresh attempt budget (Retry+1, Attempt 1), then deletes the dead letter.
// Two concurrent retries of one dead letter queue one job: both publish the
// same message id. It returns the queued job, or an error wrapping
// vigil.ErrNotFound when the dead letter is gone.
func retryDeadLetter(ctx context.Context, a streams, seq uint64) (*Job, error) {
	raw, err := a.dead.GetMsg(ctx, seq)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("dead letter %d: %w", seq, vigil.ErrNotFound)
		}
		return nil, fmt.Errorf("read dead letter: %w: %w", vigil.ErrUnavailable, err)
	}
	d, err := decodeDeadLetter(raw)
	if err != nil {
		return nil, err
	}
	j := d.Job
	j.Retry++
	j.Attempt = 1
	j.NotBefore = time.Time{}
	if _, err := publishJobs(ctx, a.js, []Job{j}); err != nil {
		return nil, fmt.Errorf("%w: %w", vigil.ErrUnavailable, err)
	}
	if err := a.dead.DeleteMsg(ctx, seq); err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("delete dead letter: %w: %w", vigil.ErrUnavailable, err)
	}
	return &j, nil
}
