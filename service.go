package vigil

import "time"

// Status is where a service stands. A service is up until its deadline (last
// pulse + next_in), late during its grace period, then down. A cancelled
// service is not judged until it pulses again.
type Status string

// The statuses, in the field's standard terms.
const (
	StatusUp        Status = "up"
	StatusLate      Status = "late"
	StatusDown      Status = "down"
	StatusCancelled Status = "cancelled"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusUp, StatusLate, StatusDown, StatusCancelled:
		return true
	}
	return false
}

// Verdict is the watchdog's judgement of one service, kept in KV bucket
// vigil_services under the service's Token and written only on a flip: first
// pulse, down, recovered, cancel, or a fresh deadline after a monitoring gap.
// Seq is the pulse record (vigil_pulses sequence) the verdict is about;
// DownSeq is the sequence of the last pulse before the current outage, so
// (service, DownSeq) names an outage and makes its alerts idempotent.
// Rearm, when set, replaces the pulse's deadline: after a monitoring gap a
// service gets a full period again before it is judged.
type Verdict struct {
	Service   string    `json:"service"`
	Status    Status    `json:"status"`
	Since     time.Time `json:"since"`
	Seq       uint64    `json:"seq"`
	LastPulse time.Time `json:"last_pulse"`
	Deadline  time.Time `json:"deadline"`
	Owner     *Owner    `json:"owner,omitempty"`
	DownSeq   uint64    `json:"down_seq,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Rearm     time.Time `json:"rearm,omitzero"`
}

// Service is what vigil knows of one service: its last pulse record joined
// with the watchdog's latest verdict (nil until the watchdog has seen it).
type Service struct {
	Record
	Verdict *Verdict
}

// Deadline returns when the next pulse is due: the record's At+NextIn, or the
// verdict's Rearm when the watchdog granted a fresh period for this very pulse
// after a monitoring gap.
func (s *Service) Deadline() time.Time {
	d := s.Record.Deadline()
	if v := s.Verdict; v != nil && v.Seq == s.Seq && v.Rearm.After(d) {
		return v.Rearm
	}
	return d
}

// DownAt returns the instant the service turns down: Deadline() + grace.
func (s *Service) DownAt() time.Time { return s.Deadline().Add(s.GraceD()) }

// StatusAt returns the service's status at now. It is a pure function of the
// record, the verdict and now: cancelled if the last record is a cancel, up
// before the deadline, late before deadline+grace, down after.
func (s *Service) StatusAt(now time.Time) Status {
	if s.Op == OpCancel {
		return StatusCancelled
	}
	switch d := s.Deadline(); {
	case now.Before(d):
		return StatusUp
	case now.Before(d.Add(s.GraceD())):
		return StatusLate
	default:
		return StatusDown
	}
}

// SinceAt returns when the status that StatusAt(now) reports began.
func (s *Service) SinceAt(now time.Time) time.Time {
	v := s.Verdict
	switch s.StatusAt(now) {
	case StatusCancelled:
		return s.CancelledAt
	case StatusLate:
		return s.Deadline()
	case StatusDown:
		if v != nil && v.Status == StatusDown && v.DownSeq == s.Seq {
			return v.Since
		}
		return s.DownAt()
	default: // up
		if v != nil && v.Status == StatusUp && !v.Since.After(s.At) {
			return v.Since
		}
		if v != nil && v.Status == StatusDown {
			return s.At // recovered by this pulse; the watchdog has not caught up yet
		}
		return s.At
	}
}

// ServiceStatus is the JSON view of a Service at one instant, as served by
// GET /v1/services. Times are RFC 3339 UTC; next_in and grace are seconds.
type ServiceStatus struct {
	Name      string    `json:"name"`
	Status    Status    `json:"status"`
	Since     time.Time `json:"since"`
	LastPulse time.Time `json:"last_pulse"`
	Deadline  time.Time `json:"deadline"`
	NextIn    Seconds   `json:"next_in"`
	Grace     Seconds   `json:"grace"`
	Owner     *Owner    `json:"owner,omitempty"`
	Host      string    `json:"host,omitempty"`
	Message   string    `json:"message,omitempty"`
	Origin    string    `json:"origin,omitempty"`
	Seq       uint64    `json:"seq"`
}

// StatusView returns the ServiceStatus of s at now.
func (s *Service) StatusView(now time.Time) ServiceStatus {
	return ServiceStatus{
		Name:      s.Service,
		Status:    s.StatusAt(now),
		Since:     s.SinceAt(now).UTC(),
		LastPulse: s.At.UTC(),
		Deadline:  s.Deadline().UTC(),
		NextIn:    s.NextIn,
		Grace:     Seconds(s.GraceD()),
		Owner:     s.Owner,
		Host:      s.Host,
		Message:   s.Message,
		Origin:    s.Origin,
		Seq:       s.Seq,
	}
}
