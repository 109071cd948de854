package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/bench"
)

// tiny is a scale at which every in-process scenario runs in a few
// seconds: the smoke test checks that they work, not how fast.
func tiny() bench.Scale {
	return bench.Scale{
		Window: 200 * time.Millisecond, Runs: 1, Clients: []int{1, 4}, Ref: 4,
		Services: 200, Sweep: []int{200}, Period: 600 * time.Millisecond, Grace: 100 * time.Millisecond,
		Silent: 10, MassServices: 200, MassPeriod: 500 * time.Millisecond,
		Mails: 20, Latency: 3,
		Events: 2000, QueryServices: 200, Queries: 3, Scans: 1,
	}
}

func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several JetStream servers")
	}
	out := t.TempDir()
	var stdout, progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := bench.Run(ctx, []string{"ingest", "detection", "notifier", "queries"},
		bench.Options{Scale: tiny(), Out: out, Progress: &progress}, &stdout)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if len(results) != 4 {
		t.Fatalf("Run returned %d results, want 4", len(results))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("stdout has %d lines, want 4 JSON lines:\n%s", len(lines), stdout.String())
	}
	for _, l := range lines {
		var v struct {
			Scenario string             `json:"scenario"`
			Metrics  map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Scenario == "" || len(v.Metrics) == 0 {
			t.Errorf("stdout line %q: %v, want a result", l, err)
		}
	}
	for _, want := range []struct {
		scenario, metric string
	}{
		{"ingest", "http_pulse_c4"},
		{"ingest", "js_async_publish"},
		{"ingest", "ratio_http_pulse_to_bare_http"},
		{"detection", "lateness_p99"},
		{"notifier", "mail_deliveries"},
		{"queries", "events_first_page_p99"},
	} {
		found := false
		for _, r := range results {
			if v, ok := r.Value(want.metric); r.Scenario == want.scenario && ok && v > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no positive %s", want.scenario, want.metric)
		}
	}
	for _, r := range results {
		if r.Scenario != "detection" {
			continue
		}
		for _, m := range []string{"missed_deaths", "false_deaths", "mass_missed"} {
			if v, _ := r.Value(m); v != 0 {
				t.Errorf("detection %s = %v, want 0", m, v)
			}
		}
	}
	for _, f := range []string{"results.jsonl", "results.txt", "detection-lateness.svg", "ingest-concurrency.svg"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v, want a file", f, err)
		}
		if strings.HasSuffix(f, ".svg") && !bytes.Contains(b, []byte("<polyline")) {
			t.Errorf("%s has no line", f)
		}
	}
}

func TestRunUnknownScenario(t *testing.T) {
	_, err := bench.Run(context.Background(), []string{"nope"}, bench.Options{Scale: tiny()}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Errorf("Run(nope) = %v, want an unknown scenario error", err)
	}
}
