package threshold_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/threshold"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in               string
		metric, op, expr string
		value            float64
		dur              time.Duration
	}{
		{"cpu_percent > 90 for 5m", "cpu_percent", ">", "cpu_percent > 90 for 5m0s", 90, 5 * time.Minute},
		{"memory_percent>95", "memory_percent", ">", "memory_percent > 95", 95, 0},
		{"disk_percent{mount=/} > 90", "disk_percent{mount=/}", ">", "disk_percent{mount=/} > 90", 90, 0},
		{"disk_free_percent{ mount = /var } < 10%  for 90s", "disk_free_percent{mount=/var}", "<", "disk_free_percent{mount=/var} < 10 for 1m30s", 10, 90 * time.Second},
		{"process_count{name=nginx} < 1", "process_count{name=nginx}", "<", "process_count{name=nginx} < 1", 1, 0},
		{"load1 >= 4.5 for 1m", "load1", ">=", "load1 >= 4.5 for 1m0s", 4.5, time.Minute},
		{"uptime != 0", "uptime", "!=", "uptime != 0", 0, 0},
	}
	for _, tt := range tests {
		r, err := threshold.Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.in, err)
			continue
		}
		if r.Metric.String() != tt.metric || r.Op != tt.op || r.Value != tt.value || r.For != tt.dur || r.Expr() != tt.expr || r.Level != vigil.LevelWarning {
			t.Errorf("Parse(%q) = %+v (%s), want %s %s %v for %v", tt.in, r, r.Expr(), tt.metric, tt.op, tt.value, tt.dur)
		}
	}
	for in, want := range map[string]string{
		"":                           "want <metric>",
		"cpu > 90":                   "unknown metric",
		"cpu_percent 90":             "operator",
		"cpu_percent > ninety":       "not a number",
		"cpu_percent > 90 for ever":  "not a duration",
		"cpu_percent > 90 during 5m": "want <number>",
		"cpu_percent{mount=/} > 90":  "takes no label",
		"cpu_percent > 90 for -5m":   "not a duration",
	} {
		_, err := threshold.Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestStep(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r, err := threshold.Parse("cpu_percent > 90 for 5m")
	if err != nil {
		t.Fatal(err)
	}
	clear80 := 80.0
	hyst := r
	hyst.Clear = &clear80
	instant, _ := threshold.Parse("process_count{name=nginx} < 1")
	type step struct {
		at   time.Duration
		v    float64
		want threshold.Change
	}
	tests := []struct {
		name  string
		rule  threshold.Rule
		steps []step
	}{
		{"fires after holding 5m, once", r, []step{
			{0, 95, threshold.None},
			{time.Minute, 96, threshold.None},
			{5 * time.Minute, 97, threshold.Fired},
			{6 * time.Minute, 99, threshold.None},
			{60 * time.Minute, 99, threshold.None},
		}},
		{"a dip resets the wait", r, []step{
			{0, 95, threshold.None},
			{4 * time.Minute, 50, threshold.None},
			{5 * time.Minute, 95, threshold.None},
			{9 * time.Minute, 95, threshold.None},
			{10 * time.Minute, 95, threshold.Fired},
		}},
		{"recovers after 5m back", r, []step{
			{0, 95, threshold.None},
			{5 * time.Minute, 95, threshold.Fired},
			{6 * time.Minute, 10, threshold.None},
			{8 * time.Minute, 95, threshold.None},
			{9 * time.Minute, 10, threshold.None},
			{14 * time.Minute, 10, threshold.Recovered},
			{15 * time.Minute, 10, threshold.None},
		}},
		{"hysteresis: 85 is not clear of 80", hyst, []step{
			{0, 95, threshold.None},
			{5 * time.Minute, 95, threshold.Fired},
			{6 * time.Minute, 85, threshold.None},
			{20 * time.Minute, 85, threshold.None},
			{21 * time.Minute, 79, threshold.None},
			{26 * time.Minute, 80, threshold.Recovered},
		}},
		{"no duration: at once both ways", instant, []step{
			{0, 2, threshold.None},
			{time.Minute, 0, threshold.Fired},
			{2 * time.Minute, 0, threshold.None},
			{3 * time.Minute, 1, threshold.Recovered},
			{4 * time.Minute, 0, threshold.Fired},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st threshold.State
			var got, want []threshold.Change
			for _, s := range tt.steps {
				var c threshold.Change
				st, c = tt.rule.Step(st, s.v, t0.Add(s.at))
				got, want = append(got, c), append(want, s.want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStepFiredAt(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r, _ := threshold.Parse("memory_percent > 95")
	st, c := r.Step(threshold.State{}, 96, t0)
	if c != threshold.Fired || !st.Firing || !st.FiredAt.Equal(t0) || st.Value != 96 {
		t.Errorf("Step = %+v, %v; want fired at t0 with value 96", st, c)
	}
}
