package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns an HTTP client that keeps up to conns connections
// alive to one host, as a load tool does.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		},
	}
}

// load is the outcome of one closed-loop run.
type load struct {
	ops    int64           // operations completed in the window
	rate   float64         // ops per second
	lat    []time.Duration // latency of every operation in the window
	failed int64           // operations answered with an error status, in the window
}

// statusError is an answer with an unexpected status (a 503 when the
// store timed out): closedLoop counts it and goes on.
type statusError struct {
	what string
	code string
	body []byte
}

func (e *statusError) Error() string { return fmt.Sprintf("%s = %s %s", e.what, e.code, e.body) }

// closedLoop runs clients workers, each calling op back to back: first for
// a warm-up of window/5 (not counted), then for window. op gets the worker
// and a sequence number unique across workers. A *statusError is counted
// as failed; any other error stops the run and is returned.
func closedLoop(ctx context.Context, clients int, window time.Duration, op func(ctx context.Context, worker int, seq uint64) error) (load, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		seq      atomic.Uint64
		failed   atomic.Int64
		counting atomic.Bool
		stop     atomic.Bool
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, clients)
	)
	for w := range clients {
		wg.Go(func() {
			for !stop.Load() {
				t0 := time.Now()
				if err := op(ctx, w, seq.Add(1)); err != nil {
					var se *statusError
					if errors.As(err, &se) {
						if counting.Load() && !stop.Load() {
							failed.Add(1)
						}
						continue
					}
					if ctx.Err() == nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
					}
					return
				}
				if counting.Load() && !stop.Load() {
					lats[w] = append(lats[w], time.Since(t0))
				}
			}
		})
	}
	sleep(ctx, window/5)
	counting.Store(true)
	start := time.Now()
	sleep(ctx, window)
	stop.Store(true)
	el := time.Since(start)
	wg.Wait()
	if firstErr != nil {
		return load{}, firstErr
	}
	if ctx.Err() != nil {
		return load{}, ctx.Err()
	}
	var out load
	for _, l := range lats {
		out.lat = append(out.lat, l...)
	}
	out.ops = int64(len(out.lat))
	out.failed = failed.Load()
	out.rate = float64(out.ops) / el.Seconds()
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// post sends body to url and fails on any status but want.
func post(ctx context.Context, c *http.Client, url, contentType string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return &statusError{what: "POST " + url, code: strconv.Itoa(resp.StatusCode), body: b}
	}
	return nil
}

// get sends GET url, reads the body and returns the status.
func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// pulseBody returns the JSON pulse of one of 100,000 services, the same
// payload for vigil and for the limits it is compared with.
func pulseBody(n uint64) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"service":"svc-`...)
	b = strconv.AppendUint(b, n%100000, 10)
	return append(b, `","next_in":60,"grace":10,"host":"bench"}`...)
}

// batchBody returns a JSON array of 100 pulses starting at service n.
func batchBody(n uint64) []byte {
	b := make([]byte, 0, 100*72)
	b = append(b, '[')
	for i := range uint64(100) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, pulseBody(n*100+i)...)
	}
	return append(b, ']')
}
