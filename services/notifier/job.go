package notifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// Job is one delivery job: a message on stream VIGIL_DELIVERIES, subject
// vigil.DeliverySubject(Channel), JSON-encoded. ID is stable per (alert,
// channel, target) for the first notification (per batch for a grouped
// one, plus stage and step for repeats and escalations); it is the
// message's Nats-Msg-Id (with suffixes for later attempts), the key of its
// mark in KV vigil_delivered, and the Message.ID the channel passes on.
type Job struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	Target  string `json:"target"`
	// Route names the route that chose the receiver: "owner", "default" or
	// a configured route's name.
	Route string `json:"route"`
	Stage Stage  `json:"stage"`
	// Step is the repeat number (1, 2, …) or the escalation step (1-based).
	Step int `json:"step,omitempty"`
	// Alert is the alert told about; for a grouped job, the first alert of
	// its batch the fan-out saw.
	Alert vigil.Alert `json:"alert"`
	// Group marks a job for every alert of batch Alert.Batch (of kind
	// Alert.Kind) that routes to this receiver; they are collected from
	// VIGIL_ALERTS when the job is sent.
	Group bool `json:"group,omitempty"`
	// Repeat is the repeat interval of the route, in seconds (0: none).
	Repeat vigil.Seconds `json:"repeat,omitempty"`
	// NotBefore delays the job: a worker that receives it earlier puts it
	// back until then (escalations, repeats, group waits).
	NotBefore time.Time `json:"not_before,omitzero"`
	// Stored is when the alert was stored in VIGIL_ALERTS: the start of the
	// delivery latency.
	Stored time.Time `json:"stored"`
	// Attempt is the attempt this message carries, 1-based. A transient
	// failure re-queues the job as a new message with Attempt+1.
	Attempt int `json:"attempt"`
	// Retry counts how often the job was re-queued from the dead letters.
	Retry int `json:"retry,omitempty"`
}

// alertKey is the part of a job id that names what is told: the alert, or
// the batch and kind of a grouped job.
func alertKey(a *vigil.Alert, group bool) string {
	if group {
		return "batch\x00" + a.Batch + "\x00" + string(a.Kind)
	}
	return a.ID
}

// jobID returns the job id for a receiver of what key names: 32 hex
// digits of SHA-256 over the fields. The first notification depends only on
// (key, channel, target), so a redelivered alert fans out to the same ids.
func jobID(key string, stage Stage, route string, step int, channel, target string) string {
	h := sha256.New()
	for _, s := range []string{key, channel, target} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	switch stage {
	case StageRepeat:
		h.Write([]byte("repeat\x00" + strconv.Itoa(step)))
	case StageEscalate:
		h.Write([]byte("escalate\x00" + route + "\x00" + strconv.Itoa(step)))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// msgID returns the Nats-Msg-Id of the job's current message: the job id,
// then ".r<n>" after n retries from the dead letters and ".a<n>" for
// attempt n > 1, so each re-queue is a new message and a re-queue that is
// repeated after a crash is deduplicated.
func (j *Job) msgID() string {
	id := j.ID
	if j.Retry > 0 {
		id += ".r" + strconv.Itoa(j.Retry)
	}
	if j.Attempt > 1 {
		id += ".a" + strconv.Itoa(j.Attempt)
	}
	return id
}

// service returns the service the job is about, "" for a grouped job or
// an alert about no service.
func (j *Job) service() string {
	if j.Group {
		return ""
	}
	return j.Alert.Service
}

// publishJobs stores jobs on VIGIL_DELIVERIES and waits for every ack. It
// returns, per job, whether it was new (not deduplicated).
func publishJobs(ctx context.Context, js jetstream.JetStream, jobs []Job) ([]bool, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(jobs))
	for i := range jobs {
		data, err := json.Marshal(&jobs[i])
		if err != nil {
			return nil, fmt.Errorf("encode job: %w", err)
		}
		m := &nats.Msg{Subject: vigil.DeliverySubject(jobs[i].Channel), Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, jobs[i].msgID())
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return nil, fmt.Errorf("store job: %w", err)
		}
		futures = append(futures, f)
	}
	fresh := make([]bool, len(jobs))
	var errs []error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			fresh[i] = !ack.Duplicate
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return fresh, fmt.Errorf("store job: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return fresh, fmt.Errorf("store %d of %d jobs: %w", len(errs), len(jobs), errors.Join(errs...))
	}
	return fresh, nil
}
