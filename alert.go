package vigil

import (
	"time"
	"unicode/utf8"
)

// AlertKind says why an alert was raised.
type AlertKind string

// The alert kinds. Down and recovered come from the watchdog, once per outage
// each; gap is one alert for deadlines that fell while vigil itself was not
// monitoring; manual comes from POST /v1/alerts or vigil.in.alert.
const (
	AlertDown      AlertKind = "down"
	AlertRecovered AlertKind = "recovered"
	AlertGap       AlertKind = "gap"
	AlertManual    AlertKind = "manual"
)

// Limits on manual alert fields, in bytes.
const (
	MaxTitleLen = 256
)

// Alert is one entry of stream VIGIL_ALERTS. ID is the JetStream message id
// and is stable per cause ("down:<token>:<down_seq>"), so a redelivered or
// re-decided alert is stored once. At is when vigil raised it.
//
// For down and recovered alerts DownSeq names the outage, LastPulse and
// Deadline describe the silence (Deadline is when the service turned down:
// last pulse + next_in + grace), and DownSince on a recovered alert says when
// the outage began. Batch is shared by every down alert of one detection
// sweep and BatchSize counts them, so the notifier can group a mass outage
// into one message per target. Gap alerts name the window (GapFrom, GapTo)
// and the Services whose deadlines fell in it.
type Alert struct {
	ID        string    `json:"id"`
	Kind      AlertKind `json:"kind"`
	Service   string    `json:"service,omitempty"`
	Title     string    `json:"title"`
	Message   string    `json:"message"`
	Level     Level     `json:"level"`
	Owner     *Owner    `json:"owner,omitempty"`
	Host      string    `json:"host,omitempty"`
	Origin    string    `json:"origin,omitempty"`
	At        time.Time `json:"at"`
	LastPulse time.Time `json:"last_pulse,omitzero"`
	Deadline  time.Time `json:"deadline,omitzero"`
	DownSince time.Time `json:"down_since,omitzero"`
	DownSeq   uint64    `json:"down_seq,omitempty"`
	Batch     string    `json:"batch,omitempty"`
	BatchSize int       `json:"batch_size,omitempty"`
	GapFrom   time.Time `json:"gap_from,omitzero"`
	GapTo     time.Time `json:"gap_to,omitzero"`
	Services  []string  `json:"services,omitempty"`
	Seq       uint64    `json:"seq,omitempty"`
}

// ManualAlert is the body of POST /v1/alerts: an alert raised by a person or
// a script. Service is optional; Owner, when set, is told first.
type ManualAlert struct {
	Service string `json:"service,omitempty"`
	Title   string `json:"title"`
	Message string `json:"message"`
	Level   Level  `json:"level"`
	Owner   *Owner `json:"owner,omitempty"`
}

// Validate checks the manual alert: title 1..MaxTitleLen bytes, message up to
// MaxMessageLen bytes, level ≥ 0, a valid service name when given, and the
// owner. It returns a *FieldError.
func (m *ManualAlert) Validate() error {
	if m.Service != "" {
		if err := ValidateName(m.Service); err != nil {
			return err
		}
	}
	if m.Title == "" {
		return Invalid("title", "is required")
	}
	if len(m.Title) > MaxTitleLen || !utf8.ValidString(m.Title) {
		return Invalid("title", "must be valid UTF-8 of at most %d bytes", MaxTitleLen)
	}
	if len(m.Message) > MaxMessageLen || !utf8.ValidString(m.Message) {
		return Invalid("message", "must be valid UTF-8 of at most %d bytes", MaxMessageLen)
	}
	if m.Level < 0 {
		return Invalid("level", "must be >= 0")
	}
	if m.Owner != nil {
		if err := m.Owner.Validate(); err != nil {
			return err
		}
	}
	return nil
}
