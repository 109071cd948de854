// Package threshold holds the agent's threshold rules ("cpu_percent > 90
// for 5m", "disk_free_percent{mount=/} < 10", "process_count{name=nginx} < 1")
// and the pure state machine that turns a series of values into one alert
// when a rule is crossed and one recovery when it clears: a change of state,
// never an alert per poll (Traylert re-alerted on every poll, compat.md §1.4).
package threshold

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// Rule is one threshold: Metric Op Value, held for at least For before it
// fires. It recovers once the value has been back on the clear side for
// For as well; Clear, when set, moves that side (hysteresis: "cpu_percent >
// 90" with Clear 80 recovers only at 80 or below).
type Rule struct {
	// Name identifies the rule in alerts and in the saved state; it defaults
	// to the expression.
	Name   string
	Metric vigil.HostMetric
	Op     string // >, >=, <, <=, == or !=
	Value  float64
	For    time.Duration
	Clear  *float64
	// Level is the level of the alert when the rule fires (default
	// warning); recoveries are info.
	Level vigil.Level
}

// Parse reads an expression "<metric> <op> <number>[%] [for <duration>]",
// for example "memory_percent > 90 for 5m" or "disk_free_percent{mount=/} <
// 10%". The metric is a vigil.HostMetric; a duration is Go's
// ("90s", "5m", "1h30m"). Errors say what is wrong with the expression.
func Parse(expr string) (Rule, error) {
	r := Rule{Name: strings.Join(strings.Fields(expr), " "), Level: vigil.LevelWarning}
	s := strings.TrimSpace(expr)
	// The metric may hold spaces inside its braces: cut after "}" if any.
	var metric, rest string
	if i := strings.Index(s, "}"); i >= 0 && strings.Contains(s[:i], "{") {
		metric, rest = s[:i+1], s[i+1:]
	} else {
		i := strings.IndexAny(s, "<>=! \t")
		if i < 0 {
			return Rule{}, fmt.Errorf("threshold %q: want <metric> <op> <number> [for <duration>]", expr)
		}
		metric, rest = s[:i], s[i:]
	}
	m, err := vigil.ParseHostMetric(metric)
	if err != nil {
		return Rule{}, fmt.Errorf("threshold %q: %s", expr, strings.TrimPrefix(err.Error(), "metric: "))
	}
	r.Metric = m
	rest = strings.TrimSpace(rest)
	for _, op := range []string{">=", "<=", "==", "!=", ">", "<"} {
		if strings.HasPrefix(rest, op) {
			r.Op, rest = op, strings.TrimSpace(rest[len(op):])
			break
		}
	}
	if r.Op == "" {
		return Rule{}, fmt.Errorf("threshold %q: want an operator (>, >=, <, <=, ==, !=) after the metric", expr)
	}
	fields := strings.Fields(rest)
	if len(fields) != 1 && (len(fields) != 3 || fields[1] != "for") {
		return Rule{}, fmt.Errorf("threshold %q: want <number> [for <duration>] after %s", expr, r.Op)
	}
	r.Value, err = strconv.ParseFloat(strings.TrimSuffix(fields[0], "%"), 64)
	if err != nil || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return Rule{}, fmt.Errorf("threshold %q: %q is not a number", expr, fields[0])
	}
	if len(fields) == 3 {
		r.For, err = time.ParseDuration(fields[2])
		if err != nil || r.For < 0 {
			return Rule{}, fmt.Errorf("threshold %q: %q is not a duration like 90s or 5m", expr, fields[2])
		}
	}
	return r, nil
}

// Expr writes the rule's expression in the form Parse reads.
func (r Rule) Expr() string {
	s := r.Metric.String() + " " + r.Op + " " + strconv.FormatFloat(r.Value, 'f', -1, 64)
	if r.For > 0 {
		s += " for " + r.For.String()
	}
	return s
}

// crossed reports whether v is on the firing side of the rule.
func (r Rule) crossed(v float64) bool { return compare(v, r.Op, r.Value) }

// cleared reports whether v is on the recovery side: past Clear when set,
// else simply not crossed.
func (r Rule) cleared(v float64) bool {
	if r.Clear == nil {
		return !r.crossed(v)
	}
	switch r.Op {
	case ">", ">=":
		return v <= *r.Clear
	case "<", "<=":
		return v >= *r.Clear
	}
	return !r.crossed(v)
}

func compare(v float64, op string, x float64) bool {
	switch op {
	case ">":
		return v > x
	case ">=":
		return v >= x
	case "<":
		return v < x
	case "<=":
		return v <= x
	case "==":
		return v == x
	case "!=":
		return v != x
	}
	return false
}

// State is where a rule stands: Firing once it has fired and not yet
// recovered; Pending is when the value first moved to the other side
// (zero when it has not), FiredAt when it last fired, Value the last value
// seen. It is saved by the agent so a restart neither re-fires nor
// forgets a firing rule.
type State struct {
	Firing  bool      `json:"firing"`
	Pending time.Time `json:"pending,omitzero"`
	FiredAt time.Time `json:"fired_at,omitzero"`
	Value   float64   `json:"value"`
}

// Change is what one step decided.
type Change int

// The changes: none, fired (crossed for long enough), recovered (cleared
// for long enough).
const (
	None Change = iota
	Fired
	Recovered
)

// Step feeds the value v seen at now into st and returns the new state and
// whether the rule fired or recovered. A rule fires once the value has
// been crossed at every step for at least r.For (at once when For is 0),
// and recovers once it has been cleared at every step for r.For; a value
// that goes back resets the wait. It is a pure function of its inputs.
func (r Rule) Step(st State, v float64, now time.Time) (State, Change) {
	st.Value = v
	toward := r.crossed(v)
	if st.Firing {
		toward = r.cleared(v)
	}
	if !toward {
		st.Pending = time.Time{}
		return st, None
	}
	if st.Pending.IsZero() {
		st.Pending = now
	}
	if now.Sub(st.Pending) < r.For {
		return st, None
	}
	st.Pending = time.Time{}
	if st.Firing {
		st.Firing = false
		return st, Recovered
	}
	st.Firing, st.FiredAt = true, now
	return st, Fired
}
