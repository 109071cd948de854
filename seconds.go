package vigil

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Seconds is a duration that travels in JSON as a number of seconds, which may
// have a fraction (60, 0.5). It is the unit of next_in and grace on the wire.
type Seconds time.Duration

// D returns s as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

// MarshalJSON writes s as a number of seconds with at most millisecond precision.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads a JSON number of seconds. Strings, null and non-finite
// values are rejected, so a typo never becomes a zero deadline.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("want a number of seconds, got %s", truncate(string(b), 32))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("%v seconds is out of range", f)
	}
	*s = Seconds(time.Duration(f * float64(time.Second)))
	return nil
}

// String formats s like time.Duration does ("1m0s").
func (s Seconds) String() string { return time.Duration(s).String() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
