package threshold_test

import (
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/agent/threshold"
)

// FuzzParse parses fuzzed threshold expressions as the agent's config
// does. Properties: no panic; an accepted rule writes an expression (Expr)
// that parses back to the same metric, operator, value and duration; and
// stepping it with a value never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cpu_percent > 90", "memory_percent > 90 for 5m", "disk_free_percent{mount=/} < 10%",
		"disk_free_percent{mount=/mnt/my disk} <= 5 for 1h30m", "load1 >= 4", "cpu_percent == 0x1p-2",
		"cpu_percent != -0", "cpu_percent > 1e400", "cpu_percent > NaN", "cpu_percent >", "> 90",
		"cpu_percent > 90 for -5m", "cpu_percent > 90 for", "nope > 1", "disk_free_percent{mount=/ < 1",
	} {
		f.Add(s, 50.0)
	}
	f.Fuzz(func(t *testing.T, expr string, v float64) {
		r, err := threshold.Parse(expr)
		if err != nil {
			return
		}
		back, err := threshold.Parse(r.Expr())
		if err != nil {
			t.Fatalf("Parse(%q).Expr() = %q, which does not parse: %v", expr, r.Expr(), err)
		}
		if back.Metric != r.Metric || back.Op != r.Op || back.Value != r.Value || back.For != r.For {
			t.Fatalf("Parse(%q) = %+v, but Parse(Expr()) = %+v", expr, r, back)
		}
		st, _ := r.Step(threshold.State{}, v, time.Unix(1795000000, 0))
		r.Step(st, v, time.Unix(1795000600, 0))
	})
}
