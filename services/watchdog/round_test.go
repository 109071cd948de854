package watchdog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// TestMassExpiryRounds: services that turn down at the same instant are
// judged in rounds of maxRound, chunks of maxChunk (made small here). Every
// service gets exactly one down alert, stored before its down verdict, and
// every round is one alert batch whose BatchSize is the number of its
// alerts.
func TestMassExpiryRounds(t *testing.T) {
	t.Cleanup(watchdog.SetRoundLimits(64, 16))
	s := bustest.New(t)
	a := s.Provision(t)
	al := watchAlerts(t, a.JS)
	startReplica(t, s, "w1", nil)

	const n = 150 // rounds of 64, 64, 22; chunks of 16
	at := time.Now()
	seqs := make([]uint64, n)
	for i := range n {
		seqs[i] = pulse(t, a.JS, fmt.Sprintf("svc-%03d", i), at, time.Second)
	}
	downs := al.waitN(t, vigil.AlertDown, "*", n)
	ctx := context.Background()
	batches := map[string]int{}
	sizes := map[string]int{}
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		v := waitVerdict(t, a.Services, name, func(v *vigil.Verdict) bool { return v.Status == vigil.StatusDown })
		if v.DownSeq != seqs[i] {
			t.Errorf("%s: verdict down_seq %d, want %d", name, v.DownSeq, seqs[i])
		}
		got := al.of(vigil.AlertDown, name)
		if len(got) != 1 {
			t.Errorf("%s: %d down alerts, want exactly 1", name, len(got))
			continue
		}
		batches[got[0].Batch]++
		sizes[got[0].Batch] = got[0].BatchSize
		m, err := a.Alerts.GetLastMsgForSubject(ctx, vigil.AlertSubject(vigil.AlertDown, name))
		if err != nil {
			t.Fatal(err)
		}
		e, err := a.Services.Get(ctx, vigil.Token(name))
		if err != nil {
			t.Fatal(err)
		}
		if m.Time.After(e.Created()) {
			t.Errorf("%s: down alert stored at %v, after its verdict (%v)", name, m.Time, e.Created())
		}
	}
	if len(downs) != n {
		t.Errorf("down alerts = %d, want %d", len(downs), n)
	}
	if len(batches) < 3 {
		t.Errorf("%d batches, want at least 3 rounds of at most 64", len(batches))
	}
	for b, c := range batches {
		if c != sizes[b] || c > 64 {
			t.Errorf("batch %s: %d alerts, batch_size %d (round limit 64)", b, c, sizes[b])
		}
	}
}
