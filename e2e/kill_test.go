package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// TestKill9KeepsAcknowledgedPulses kills `vigil all` (embedded NATS) with
// SIGKILL while eight clients pulse as fast as they can, restarts it on the
// same data directory, and checks that every pulse that got a 202 is there.
func TestKill9KeepsAcknowledgedPulses(t *testing.T) {
	dir := t.TempDir()
	args := []string{"all", "--data-dir", dir, "--http-addr", freeAddr(t), "--nats-listen", freeAddr(t)}
	p := start(t, args...)

	var acked sync.Map
	var n atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("writer-%d pulse %d", g, i)
				code, err := postPulse(p.http, name, 3600)
				if err != nil {
					return // the process is gone
				}
				if code == http.StatusAccepted {
					acked.Store(name, true)
					if n.Add(1) >= 500 {
						once.Do(func() { close(enough) })
					}
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(wait):
		t.Fatalf("only %d pulses acknowledged in %v", n.Load(), wait)
	}
	p.kill() // mid-flight: writers still have requests open
	wg.Wait()

	p2 := start(t, args...)
	got := servicesReady(t, p2.http)
	missing := 0
	acked.Range(func(k, _ any) bool {
		if _, ok := got[k.(string)]; !ok {
			missing++
		}
		return true
	})
	t.Logf("%d pulses acknowledged before kill -9; %d services after restart; %d missing", n.Load(), len(got), missing)
	if missing != 0 {
		t.Errorf("%d acknowledged pulses lost by kill -9", missing)
	}
}

// TestCrashedProcessRaisesNoFalseDown runs every role of vigil against an
// external NATS server, kills that process while services keep pulsing
// through a second ingest process, restarts it, and checks that only the one
// service that really fell silent is reported down.
func TestCrashedProcessRaisesNoFalseDown(t *testing.T) {
	s := bustest.New(t)
	url := s.ClientURL()
	ing := start(t, "ingest", "--nats-url", url, "--http-addr", freeAddr(t))
	allArgs := []string{"all", "--nats-url", url, "--http-addr", freeAddr(t)}
	p := start(t, allArgs...)
	aw := watchAlerts(t, url)
	waitLeader(t, p.http)

	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("svc %d", i)
	}
	names[0] = "victim"
	var victimSilent atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the services: pulse every 200 ms, promising 1.5 s
		defer wg.Done()
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			for _, name := range names {
				if name == "victim" && victimSilent.Load() {
					continue
				}
				if code, err := postPulse(ing.http, name, 1.5); err != nil || code != http.StatusAccepted {
					t.Errorf("pulse %s: %d %v", name, code, err)
				}
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	p.kill()
	// While no watchdog runs the services go on pulsing; the restarted
	// process must catch up before it judges anyone.
	p2 := start(t, allArgs...)
	waitLeader(t, p2.http)
	victimSilent.Store(true)
	aw.waitFor(t, "the victim's down alert", func() bool { return len(aw.of(vigil.AlertDown)) > 0 })
	for _, a := range aw.of(vigil.AlertDown) {
		if a.Service != "victim" {
			t.Errorf("false down alert for %q", a.Service)
		}
	}
	if g := aw.of(vigil.AlertGap); len(g) != 0 {
		t.Errorf("a failover raised a gap alert: %+v", g[0])
	}
}

// TestOwnDowntimeIsOneGapAlert kills `vigil all` right after ten services
// pulsed, restarts it after their deadlines, and expects one gap alert
// listing them, then (after the fresh period) one down alert each.
func TestOwnDowntimeIsOneGapAlert(t *testing.T) {
	dir := t.TempDir()
	natsAddr := freeAddr(t)
	args := []string{
		"all", "--data-dir", dir, "--http-addr", freeAddr(t), "--nats-listen", natsAddr,
		"--gap-threshold", "100ms",
	}
	p := start(t, args...)
	for i := range 10 {
		if code, err := postPulse(p.http, fmt.Sprintf("job-%d", i), 1); err != nil || code != http.StatusAccepted {
			t.Fatalf("pulse: %d %v", code, err)
		}
	}
	p.kill()
	// The killed leader's lease must age out (lease TTL) before the restarted
	// process can lead, so its liveness mark is older than the threshold:
	// the deadlines (1 s) fall in the monitoring gap.
	p2 := start(t, args...)
	aw := watchAlerts(t, "nats://"+natsAddr)
	aw.waitFor(t, "the gap alert", func() bool { return len(aw.of(vigil.AlertGap)) > 0 })
	gap := aw.of(vigil.AlertGap)[0]
	if len(gap.Services) != 10 {
		t.Errorf("gap alert lists %d services, want 10: %s", len(gap.Services), gap.Message)
	}
	aw.waitFor(t, "10 down alerts after the fresh period", func() bool { return len(aw.of(vigil.AlertDown)) >= 10 })
	seen := map[string]int{}
	for _, a := range aw.of(vigil.AlertDown) {
		seen[a.Service]++
		if a.Deadline.Before(gap.GapTo) {
			t.Errorf("%s judged on its pre-gap deadline %v", a.Service, a.Deadline)
		}
	}
	for name, c := range seen {
		if c != 1 {
			t.Errorf("%s: %d down alerts, want 1", name, c)
		}
	}
	if len(aw.of(vigil.AlertGap)) != 1 {
		t.Errorf("gap alerts = %d, want 1", len(aw.of(vigil.AlertGap)))
	}
	_ = p2
}

// servicesReady lists services once the API's view has caught up (it answers
// 503 until then).
func servicesReady(t *testing.T, base string) map[string]vigil.ServiceStatus {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get(base + "/v1/services?limit=1")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return services(t, base)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not serving after %v", wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitLeader(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get(base + "/v1/watchdog")
		if err == nil {
			var st struct {
				Leader bool `json:"leader"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Leader {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watchdog leader at %s after %v", base, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
