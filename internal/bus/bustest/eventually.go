package bustest

import (
	"testing"
	"time"
)

// Eventually calls check every 10 ms until it returns nil, and fails the test
// with the last error if that takes longer than 10 s. It is how tests wait for
// an asynchronous effect (a consumer catching up, a record appearing) without
// sleeping a fixed time.
func Eventually(tb testing.TB, check func() error) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			tb.Fatalf("condition not met within 10s: %v", err)
		case <-tick.C:
		}
	}
}
