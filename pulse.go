package vigil

import (
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on pulse fields. MaxNextIn also bounds grace.
const (
	MaxNextIn     = 365 * 24 * time.Hour
	MaxHostLen    = 256
	MaxMessageLen = 4096
	maxTargetLen  = 512
)

// Channel types an Owner may name (watchTower's alertType). "email" is
// accepted as an alias of "mail" and normalised to it.
const (
	ChannelPushover = "pushover"
	ChannelMail     = "mail"
	ChannelWebhook  = "webhook"
	ChannelToast    = "toast"
)

// Owner says who is told when a service goes down: a channel type and a
// target in that channel (watchTower's alertType + alertTarget):
// pushover + a user or group key, mail + an RFC 5322 address, webhook + an
// http(s) URL, toast + a desktop name.
type Owner struct {
	Type   string `json:"type"`
	Target string `json:"target"`
}

// Validate checks the channel type and the shape of the target, and
// normalises "email" to "mail". Errors are *FieldError with fields
// "owner.type" or "owner.target".
func (o *Owner) Validate() error {
	o.Type = strings.ToLower(strings.TrimSpace(o.Type))
	if o.Type == "email" {
		o.Type = ChannelMail
	}
	t := o.Target
	if t == "" {
		return Invalid("owner.target", "is required")
	}
	if len(t) > maxTargetLen || !utf8.ValidString(t) {
		return Invalid("owner.target", "must be valid UTF-8 of at most %d bytes", maxTargetLen)
	}
	switch o.Type {
	case "":
		return Invalid("owner.type", "is required (pushover, mail, webhook or toast)")
	case ChannelPushover:
		// Pushover user and group keys are 30 characters of [A-Za-z0-9]
		// (https://pushover.net/api#identifiers); anything else would only
		// fail at delivery time.
		if len(t) != 30 || !isAlnum(t, 30) {
			return Invalid("owner.target", "a Pushover user or group key is 30 letters and digits")
		}
	case ChannelMail:
		a, err := mail.ParseAddress(t)
		if err != nil || a.Name != "" || a.Address != t {
			return Invalid("owner.target", "must be a bare e-mail address like ops@example.com")
		}
	case ChannelWebhook:
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Invalid("owner.target", "must be an absolute http or https URL")
		}
	case ChannelToast:
		if !isPlain(t) || len(t) > 64 {
			return Invalid("owner.target", "a desktop name is 1-64 characters of [A-Za-z0-9_-] not starting with _")
		}
	default:
		return Invalid("owner.type", "unknown channel %q (pushover, mail, webhook or toast)", o.Type)
	}
	return nil
}

// Pulse is a service saying "I am alive, and my next pulse comes within
// NextIn". It is the body of POST /v1/pulses and of the vigil.in.pulse
// subject. Grace is how long after the deadline the service is only "late";
// nil means the server's default grace.
type Pulse struct {
	Service string   `json:"service"`
	NextIn  Seconds  `json:"next_in"`
	Grace   *Seconds `json:"grace,omitempty"`
	Owner   *Owner   `json:"owner,omitempty"`
	Host    string   `json:"host,omitempty"`
	Message string   `json:"message,omitempty"`
}

// Validate checks every field: the service name (ValidateName), next_in in
// (0, 1 year], grace in [0, 1 year], the owner, and the lengths of host
// (MaxHostLen bytes) and message (MaxMessageLen bytes). It returns the first
// failure as a *FieldError.
func (p *Pulse) Validate() error {
	if err := ValidateName(p.Service); err != nil {
		return err
	}
	if p.NextIn <= 0 {
		return Invalid("next_in", "must be a number of seconds > 0")
	}
	if p.NextIn.D() > MaxNextIn {
		return Invalid("next_in", "must be at most one year (%d seconds)", int64(MaxNextIn.Seconds()))
	}
	if p.Grace != nil && (*p.Grace < 0 || p.Grace.D() > MaxNextIn) {
		return Invalid("grace", "must be between 0 and one year in seconds")
	}
	if p.Owner != nil {
		if err := p.Owner.Validate(); err != nil {
			return err
		}
	}
	if len(p.Host) > MaxHostLen || !utf8.ValidString(p.Host) {
		return Invalid("host", "must be valid UTF-8 of at most %d bytes", MaxHostLen)
	}
	if len(p.Message) > MaxMessageLen || !utf8.ValidString(p.Message) {
		return Invalid("message", "must be valid UTF-8 of at most %d bytes", MaxMessageLen)
	}
	return nil
}

// Op says what a Record does to its service.
type Op string

// The operations on a service.
const (
	OpPulse  Op = "pulse"
	OpCancel Op = "cancel"
)

// Record is what ingest stores in KV bucket vigil_pulses under the service's
// Token: the service's last pulse, or a cancel of it. Grace is always set.
// At is the server's receive time of the pulse (the deadline is At+NextIn);
// a cancel keeps the pulse fields and At of the pulse it cancels and adds
// CancelledAt. ID is the JetStream message id used for dedup; Seq is the
// stream sequence, filled in when the record is read back.
type Record struct {
	Op Op `json:"op"`
	Pulse
	Origin      string    `json:"origin,omitempty"`
	At          time.Time `json:"at"`
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	ID          string    `json:"id,omitempty"`
	Seq         uint64    `json:"seq,omitempty"`
}

// Deadline returns At + NextIn: when the next pulse is due.
func (r *Record) Deadline() time.Time { return r.At.Add(r.NextIn.D()) }

// GraceD returns the record's grace period, zero when unset.
func (r *Record) GraceD() time.Duration {
	if r.Grace == nil {
		return 0
	}
	return r.Grace.D()
}

func isAlnum(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
