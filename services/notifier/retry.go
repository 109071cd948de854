package notifier

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Retry is the back-off schedule of a delivery job whose channel failed with
// a transient error: the wait after failed attempt n (1-based) is
// Initial·2^(n-1), capped at Max, plus up to 10 % jitter; the job gets as
// many attempts as it takes for the waits (without jitter) to add up to at
// least For. With the defaults (10 s, 1 h, 24 h) that is 33 attempts: waits
// of 10 s, 20 s, … 2560 s (5110 s in all), then 23 waits of 1 h, so the last
// attempt comes 87 910 s (24 h 25 min 10 s) after the first, or up to
// 10 % later with jitter.
type Retry struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
	For     time.Duration `yaml:"for"`
}

// DefaultRetry is 10 s doubling up to 1 h, for at least 24 h.
func DefaultRetry() Retry {
	return Retry{Initial: 10 * time.Second, Max: time.Hour, For: 24 * time.Hour}
}

// Validate reports a schedule that is not 0 < Initial ≤ Max with For ≥ 0.
func (r Retry) Validate() error {
	switch {
	case r.Initial <= 0:
		return fmt.Errorf("retry.initial %v: must be > 0", r.Initial)
	case r.Max < r.Initial:
		return fmt.Errorf("retry.max %v: must be >= retry.initial (%v)", r.Max, r.Initial)
	case r.For < 0:
		return fmt.Errorf("retry.for %v: must be >= 0", r.For)
	case r.For/r.Max > 100_000:
		return fmt.Errorf("retry.for %v: more than 100000 attempts at retry.max %v", r.For, r.Max)
	}
	return nil
}

// Delay returns the wait after failed attempt n (n ≥ 1), without jitter.
func (r Retry) Delay(n int) time.Duration {
	d := r.Initial
	for i := 1; i < n; i++ {
		if d >= r.Max/2 {
			return r.Max
		}
		d *= 2
	}
	return min(d, r.Max)
}

// Jittered returns Delay(n) plus a random 0–10 %, so jobs that failed
// together do not all retry in the same instant.
func (r Retry) Jittered(n int) time.Duration {
	d := r.Delay(n)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// Attempts returns the number of attempts a job gets: the smallest N whose
// N-1 waits add up to at least For (1 when For is 0).
func (r Retry) Attempts() int {
	var total time.Duration
	n := 1
	for total < r.For {
		total += r.Delay(n)
		n++
	}
	return n
}

// Span returns how long after the first attempt the last one comes, without
// jitter: the sum of the Attempts()-1 waits.
func (r Retry) Span() time.Duration {
	var total time.Duration
	for n := 1; n < r.Attempts(); n++ {
		total += r.Delay(n)
	}
	return total
}
