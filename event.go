package vigil

import (
	"math"
	"time"
	"unicode/utf8"
)

// Limits on event fields. Messages share MaxMessageLen (bytes) with pulses;
// the attribute limits are a count and byte lengths.
const (
	MaxAttrs        = 32
	MaxAttrKeyLen   = 64
	MaxAttrValueLen = 1024
	// MaxEventLevel is the highest level an event may carry (the largest
	// int32), so every level fits the API's compact index.
	MaxEventLevel Level = math.MaxInt32
)

// Event is one entry of stream VIGIL_EVENTS, on EventSubject(Service): a
// service saying something happened, at a severity Level (watchTower's
// numeric level; names map to the documented numbers of Level).
//
// It is the body of POST /v1/events and of subject vigil.in.event, where
// only Service, Level, Message, At, Alert and Attrs are accepted. At is the
// client's own time of the event (optional, kept as given, time zone
// included); Received is the server's time when ingest accepted it. Alert
// asks ingest to raise a manual alert for the event too (see the events
// API docs). Attrs is a small map of strings (at most MaxAttrs keys of
// 1..MaxAttrKeyLen bytes, values up to MaxAttrValueLen bytes). ID is the
// JetStream message id (stable per Idempotency-Key and item), Seq the
// stream sequence, filled in when the event is read back.
//
// Strings are stored as given: any valid UTF-8 with newlines, quotes,
// semicolons or leading quotes survives the round trip byte for byte.
type Event struct {
	Service  string            `json:"service"`
	Level    Level             `json:"level"`
	Message  string            `json:"message"`
	At       time.Time         `json:"at,omitzero"`
	Received time.Time         `json:"received,omitzero"`
	Alert    bool              `json:"alert,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	ID       string            `json:"id,omitempty"`
	Seq      uint64            `json:"seq,omitempty"`
}

// Validate checks the fields a client sends: the service name
// (ValidateName), a message of 1..MaxMessageLen bytes of UTF-8, a level in
// [0, MaxEventLevel], a client time At within years 1..9999 when set, and
// the attributes' count and lengths (valid UTF-8, non-empty keys). It
// returns the first failure as a *FieldError ("service", "message",
// "level", "at", "attrs").
func (e *Event) Validate() error {
	if err := ValidateName(e.Service); err != nil {
		return err
	}
	switch {
	case e.Message == "":
		return Invalid("message", "is required")
	case len(e.Message) > MaxMessageLen || !utf8.ValidString(e.Message):
		return Invalid("message", "must be valid UTF-8 of at most %d bytes", MaxMessageLen)
	case e.Level < 0 || e.Level > MaxEventLevel:
		return Invalid("level", "must be between 0 and %d", MaxEventLevel)
	case !e.At.IsZero() && (e.At.Year() < 1 || e.At.Year() > 9999):
		return Invalid("at", "must be a time within years 1 to 9999")
	case len(e.Attrs) > MaxAttrs:
		return Invalid("attrs", "has %d keys, the limit is %d", len(e.Attrs), MaxAttrs)
	}
	for k, v := range e.Attrs {
		switch {
		case k == "" || len(k) > MaxAttrKeyLen || !utf8.ValidString(k):
			return Invalid("attrs", "key %q must be valid UTF-8 of 1 to %d bytes", truncate(k, 32), MaxAttrKeyLen)
		case len(v) > MaxAttrValueLen || !utf8.ValidString(v):
			return Invalid("attrs."+k, "must be valid UTF-8 of at most %d bytes", MaxAttrValueLen)
		}
	}
	return nil
}
