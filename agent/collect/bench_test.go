package collect

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCollect measures one snapshot as vigil-agent run takes it every
// interval, with and without the process list; it reports the processes
// walked and the JSON-less snapshot cost per collection.
func BenchmarkCollect(b *testing.B) {
	for _, procs := range []bool{true, false} {
		name := "processes"
		if !procs {
			name = "no-processes"
		}
		b.Run(name, func(b *testing.B) {
			c := New(Options{Processes: procs, FirstSample: time.Millisecond})
			ctx := context.Background()
			if _, err := c.Collect(ctx, "bench", time.Now()); err != nil {
				b.Log(err)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				s, _ := c.Collect(ctx, "bench", time.Now())
				n = s.ProcessCount
			}
			b.ReportMetric(float64(n), "processes")
		})
	}
}
