package vigil_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

func TestStatusAt(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	g := vigil.Seconds(30 * time.Second)
	pulse := func(op vigil.Op, grace vigil.Seconds) *vigil.Service {
		return &vigil.Service{Record: vigil.Record{
			Op: op, At: t0, Seq: 7,
			Pulse: vigil.Pulse{Service: "s", NextIn: vigil.Seconds(time.Minute), Grace: &grace},
		}}
	}
	tests := []struct {
		name      string
		svc       *vigil.Service
		at        time.Duration
		want      vigil.Status
		wantSince time.Duration
	}{
		{"just pulsed", pulse(vigil.OpPulse, g), 0, vigil.StatusUp, 0},
		{"before deadline", pulse(vigil.OpPulse, g), 59 * time.Second, vigil.StatusUp, 0},
		{"at deadline", pulse(vigil.OpPulse, g), time.Minute, vigil.StatusLate, time.Minute},
		{"in grace", pulse(vigil.OpPulse, g), 89 * time.Second, vigil.StatusLate, time.Minute},
		{"grace over", pulse(vigil.OpPulse, g), 90 * time.Second, vigil.StatusDown, 90 * time.Second},
		{"no grace", pulse(vigil.OpPulse, 0), time.Minute, vigil.StatusDown, time.Minute},
		{"cancelled", pulse(vigil.OpCancel, g), time.Hour, vigil.StatusCancelled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(tt.at)
			if got := tt.svc.StatusAt(now); got != tt.want {
				t.Errorf("StatusAt(+%v) = %v, want %v", tt.at, got, tt.want)
			}
			if tt.want != vigil.StatusCancelled {
				if got := tt.svc.SinceAt(now); !got.Equal(t0.Add(tt.wantSince)) {
					t.Errorf("SinceAt(+%v) = %v, want %v", tt.at, got, t0.Add(tt.wantSince))
				}
			}
		})
	}
}

func TestDeadlineRearm(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := &vigil.Service{Record: vigil.Record{
		Op: vigil.OpPulse, At: t0, Seq: 3,
		Pulse: vigil.Pulse{Service: "s", NextIn: vigil.Seconds(time.Minute)},
	}}
	if got := s.Deadline(); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Deadline() = %v", got)
	}
	s.Verdict = &vigil.Verdict{Seq: 3, Rearm: t0.Add(time.Hour)}
	if got := s.Deadline(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("Deadline() with rearm = %v, want +1h", got)
	}
	s.Verdict.Seq = 2 // a rearm for an older pulse does not apply
	if got := s.Deadline(); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Deadline() with stale rearm = %v, want +1m", got)
	}
}

func TestPulseValidate(t *testing.T) {
	neg := vigil.Seconds(-1)
	tests := []struct {
		name  string
		p     vigil.Pulse
		field string
	}{
		{"ok", vigil.Pulse{Service: "a", NextIn: vigil.Seconds(time.Second)}, ""},
		{"no service", vigil.Pulse{NextIn: vigil.Seconds(time.Second)}, "service"},
		{"zero next_in", vigil.Pulse{Service: "a"}, "next_in"},
		{"next_in over a year", vigil.Pulse{Service: "a", NextIn: vigil.Seconds(vigil.MaxNextIn + time.Second)}, "next_in"},
		{"negative grace", vigil.Pulse{Service: "a", NextIn: 1e9, Grace: &neg}, "grace"},
		{"bad owner type", vigil.Pulse{Service: "a", NextIn: 1e9, Owner: &vigil.Owner{Type: "sms", Target: "1"}}, "owner.type"},
		{"bad mail", vigil.Pulse{Service: "a", NextIn: 1e9, Owner: &vigil.Owner{Type: "email", Target: "nope"}}, "owner.target"},
		{"bad webhook", vigil.Pulse{Service: "a", NextIn: 1e9, Owner: &vigil.Owner{Type: "webhook", Target: "ftp://x"}}, "owner.target"},
		{"good mail", vigil.Pulse{Service: "a", NextIn: 1e9, Owner: &vigil.Owner{Type: "email", Target: "ops@example.com"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var field string
			var fe *vigil.FieldError
			if errors.As(err, &fe) {
				field = fe.Field
			} else if err != nil {
				t.Fatalf("Validate() = %v, not a *FieldError", err)
			}
			if field != tt.field {
				t.Errorf("Validate() field = %q (%v), want %q", field, err, tt.field)
			}
		})
	}
}

func TestPushoverTargetIsAThirtyCharacterKey(t *testing.T) {
	for target, ok := range map[string]bool{
		"uQiRzpo4DXghDmr9QzzfQu27cmVRsG":  true,
		"uKey":                            false,
		"uQiRzpo4DXghDmr9QzzfQu27cmVRsGx": false,
		"uQiRzpo4DXghDmr9QzzfQu27cmVRs!":  false,
	} {
		err := (&vigil.Owner{Type: "pushover", Target: target}).Validate()
		if (err == nil) != ok {
			t.Errorf("pushover target %q: err %v, want ok=%v", target, err, ok)
		}
	}
}
