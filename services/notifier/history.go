package notifier

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// Outcome is what became of one delivery attempt.
type Outcome string

// The outcomes of an attempt, as stored in VIGIL_ATTEMPTS and filtered by
// GET /v1/deliveries?status=.
const (
	// OutcomeDelivered: the provider accepted the message.
	OutcomeDelivered Outcome = "delivered"
	// OutcomeRetrying: a transient failure; NextRetry says when.
	OutcomeRetrying Outcome = "retrying"
	// OutcomeDead: a permanent failure, the last attempt failed, or the
	// channel is not configured; the job is in the dead letters.
	OutcomeDead Outcome = "dead"
	// OutcomeSilenced: a silence matched; nothing was sent.
	OutcomeSilenced Outcome = "silenced"
	// OutcomeDuplicate: the job had already been delivered (a redelivery
	// after a crash); nothing was sent.
	OutcomeDuplicate Outcome = "skipped-duplicate"
	// OutcomeResolved: a repeat or escalation found the service no longer
	// down; nothing was sent and the job ends.
	OutcomeResolved Outcome = "resolved"
)

var outcomes = []Outcome{OutcomeDelivered, OutcomeRetrying, OutcomeDead, OutcomeSilenced, OutcomeDuplicate, OutcomeResolved}

// maxListed caps the services an attempt of a grouped job lists, so a
// record of a mass outage stays far below the NATS payload limit.
const maxListed = 200

// Attempt is one entry of the delivery history: a message on stream
// VIGIL_ATTEMPTS, subject vigil.AttemptSubject(channel, service) (service
// "_" for a grouped job), JSON-encoded. Target is redacted (Redact).
type Attempt struct {
	At      time.Time       `json:"at"`
	Job     string          `json:"job"`
	Alert   string          `json:"alert"`
	Service string          `json:"service,omitempty"`
	Kind    vigil.AlertKind `json:"kind"`
	Channel string          `json:"channel"`
	Target  string          `json:"target"`
	Route   string          `json:"route"`
	Stage   Stage           `json:"stage"`
	Step    int             `json:"step,omitempty"`
	Status  Outcome         `json:"status"`
	Error   string          `json:"error,omitempty"`
	// Attempt is the attempt number, 1-based (0 when nothing was tried).
	Attempt   int       `json:"attempt"`
	NextRetry time.Time `json:"next_retry,omitzero"`
	// Batch and Services describe a grouped job: the sweep's batch id and
	// the services told (at most 200; ServicesMore counts the rest).
	Batch        string   `json:"batch,omitempty"`
	Services     []string `json:"services,omitempty"`
	ServicesMore int      `json:"services_more,omitempty"`
	// Seq is the record's sequence in VIGIL_ATTEMPTS, filled in on read.
	Seq uint64 `json:"seq,omitempty"`
}

// newAttempt returns the history record of job j with status s.
func newAttempt(j *Job, alerts []vigil.Alert, s Outcome, at time.Time) Attempt {
	a := Attempt{
		At: at.UTC(), Job: j.ID, Alert: j.Alert.ID, Service: j.service(), Kind: j.Alert.Kind,
		Channel: j.Channel, Target: Redact(j.Channel, j.Target), Route: j.Route, Stage: j.Stage, Step: j.Step,
		Status: s, Attempt: j.Attempt,
	}
	if j.Group {
		a.Batch = j.Alert.Batch
		for i, m := range alerts {
			if i == maxListed {
				a.ServicesMore = len(alerts) - maxListed
				break
			}
			a.Services = append(a.Services, m.Service)
		}
	}
	return a
}

// matches reports whether the attempt passes the query's client-side
// filters (alert id, service of a grouped job, status).
func (a *Attempt) matches(q *deliveryQuery) bool {
	if q.alert != "" && a.Alert != q.alert {
		return false
	}
	if q.status != "" && a.Status != q.status {
		return false
	}
	if q.service != "" && a.Service != q.service {
		found := false
		for _, s := range a.Services {
			found = found || s == q.service
		}
		return found
	}
	return true
}

// subject returns the attempt's subject in VIGIL_ATTEMPTS.
func (a *Attempt) subject() string { return vigil.AttemptSubject(a.Channel, a.Service) }

func decodeAttempt(m *jetstream.RawStreamMsg) (Attempt, error) {
	var a Attempt
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return a, fmt.Errorf("decode attempt %d: %w", m.Sequence, err)
	}
	a.Seq = m.Sequence
	return a, nil
}

// Redact hides the secret part of a target for the history and logs: the
// middle of a Pushover user or group key ("uQiR…3x1P"), and the user info,
// path and query of a webhook URL ("https://hooks.example.com/…"). Mail
// addresses and desktop names are shown as they are.
func Redact(channelType, target string) string {
	switch channelType {
	case vigil.ChannelPushover:
		if len(target) <= 8 {
			return "…"
		}
		return target[:4] + "…" + target[len(target)-4:]
	case vigil.ChannelWebhook:
		u, err := url.Parse(target)
		if err != nil || u.Host == "" {
			return "…"
		}
		r := u.Scheme + "://" + u.Host
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			r += "/…"
		}
		return r
	}
	return target
}
