package watchdog

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

// BenchmarkTrackerMemory reports the heap held per tracked service at
// 1,000,000 services with owners and hosts (goal: ≤ 1 KiB per service).
//
//	go test -run '^$' -bench TrackerMemory -benchtime 1x ./services/watchdog/
func BenchmarkTrackerMemory(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := newTracker()
		now := time.Now()
		g := vigil.Seconds(30 * time.Second)
		up := &vigil.Verdict{Status: vigil.StatusUp, Since: now}
		for i := range n {
			name := fmt.Sprintf("service-%07d.example", i)
			tok := vigil.Token(name)
			rec := vigil.Record{Op: vigil.OpPulse, At: now, Pulse: vigil.Pulse{
				Service: name,
				NextIn:  vigil.Seconds(time.Duration(10+i%600) * time.Second), Grace: &g,
				Owner: &vigil.Owner{Type: "mail", Target: fmt.Sprintf("team-%d@example.com", i%100)},
				Host:  fmt.Sprintf("host-%d", i%5000),
			}}
			tr.applyVerdict(tok, name, up, uint64(i+1), now.UnixNano())
			tr.applyRecord(tok, name, &rec, uint64(i+1), now.UnixNano())
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/service")
		runtime.KeepAlive(tr)
	}
}
