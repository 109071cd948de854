package watchdog

import (
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

func TestEvaluate(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	base := entry{seq: 10, at: t0, nextIn: 60 * sec, grace: 30 * sec, op: vigil.OpPulse}
	tests := []struct {
		name    string
		mod     func(e *entry)
		wantAct action
		wantDue int64
	}{
		{"first pulse registers", func(*entry) {}, actRegister, t0},
		{"up waits for deadline+grace", func(e *entry) { e.vStatus, e.vSeq = vigil.StatusUp, 9 }, actDown, t0 + 90*sec},
		{"down for this silence: nothing", func(e *entry) { e.vStatus, e.vDownSeq = vigil.StatusDown, 10 }, actNone, 0},
		{"pulse after down recovers", func(e *entry) { e.vStatus, e.vDownSeq = vigil.StatusDown, 7 }, actRecover, t0},
		{"cancel", func(e *entry) { e.op, e.vStatus = vigil.OpCancel, vigil.StatusUp }, actCancel, t0},
		{"cancel done", func(e *entry) { e.op, e.vStatus, e.vSeq = vigil.OpCancel, vigil.StatusCancelled, 10 }, actNone, 0},
		{"pulse after cancel registers", func(e *entry) { e.vStatus, e.vSeq = vigil.StatusCancelled, 9 }, actRegister, t0},
		{"pulse after cancel while down recovers", func(e *entry) { e.vStatus, e.vSeq, e.vDownSeq = vigil.StatusCancelled, 9, 5 }, actRecover, t0},
		{"rearm after a gap", func(e *entry) { e.vStatus, e.vSeq, e.vRearm = vigil.StatusUp, 10, t0+600*sec }, actDown, t0 + 630*sec},
		{"rearm for an older pulse is ignored", func(e *entry) { e.vStatus, e.vSeq, e.vRearm = vigil.StatusUp, 9, t0+600*sec }, actDown, t0 + 90*sec},
		{"verdict without record", func(e *entry) { e.seq = 0 }, actNone, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			tt.mod(&e)
			act, due := e.evaluate(t0)
			if act != tt.wantAct || due != tt.wantDue {
				t.Errorf("evaluate() = %v at %+d s, want %v at %+d s", act, (due-t0)/sec, tt.wantAct, (tt.wantDue-t0)/sec)
			}
		})
	}
}

func TestTrackerHeap(t *testing.T) {
	tr := newTracker()
	now := time.Now()
	rec := func(nextIn time.Duration) *vigil.Record {
		return &vigil.Record{Op: vigil.OpPulse, At: now, Pulse: vigil.Pulse{Service: "x", NextIn: vigil.Seconds(nextIn)}}
	}
	up := &vigil.Verdict{Status: vigil.StatusUp, Since: now}
	for i, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
		name := string(rune('a' + i))
		tr.applyVerdict(name, name, up, 1, now.UnixNano())
		tr.applyRecord(name, name, rec(d), 5, now.UnixNano())
	}
	// An older record must not move b's deadline.
	tr.applyRecord("b", "b", rec(time.Hour), 4, now.UnixNano())
	got := tr.popDue(now.Add(2*time.Second).UnixNano(), 10)
	if len(got) != 2 || got[0].name != "b" || got[1].name != "c" {
		t.Fatalf("popDue(+2s) = %v, want [b c]", names(got))
	}
	tr.remove("a")
	if _, ok := tr.nextDue(); ok {
		t.Errorf("nextDue() after removing the last entry = ok, want empty")
	}
	if n := len(tr.byToken); n != 2 {
		t.Errorf("tracked = %d, want 2", n)
	}
}

func names(es []*entry) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.name)
	}
	return s
}
