package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/ingest"
)

// TestAcknowledgedWritesSurviveLeaderLoss runs ingest on a real 3-node
// JetStream cluster with R3 buckets, drives every service through pulse,
// cancel, pulse, cancel (each step retried until acknowledged), and shuts
// down the leader of the pulse bucket a third of the way through. Every
// service must end on the record of its last acknowledged cancel: same
// sequence, op cancel. A cancel that answered "already cancelled" from a
// stale read, or an acknowledged write lost with the leader, fails it.
func TestAcknowledgedWritesSurviveLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := bustest.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc := c.Conn(t)
	js, err := bus.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	a, err := bus.Provision(ctx, js, bus.Config{Replicas: 3})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	cfg := ingest.DefaultConfig()
	role, err := ingest.New(cfg, ingest.Deps{Conn: nc, Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry(), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	role.Routes(rt)
	srv := httptest.NewServer(rt)
	defer srv.Close()
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- role.Run(runCtx) }()
	defer func() {
		stopRun()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	const services, steps = 40, 4
	var acked atomic.Int64
	third := make(chan struct{})
	var thirdOnce sync.Once
	// do sends one step until it is acknowledged and returns the stored seq.
	do := func(name string, step int) (uint64, error) {
		method, path, body, want := "POST", "/v1/pulses", fmt.Sprintf(`{"service":%q,"next_in":3600}`, name), http.StatusAccepted
		if step%2 == 1 {
			method, path, body, want = "DELETE", "/v1/services/"+name, "", http.StatusOK
		}
		for {
			req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			data, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			switch {
			case resp.StatusCode == want:
				var out struct {
					Seq uint64 `json:"seq"`
				}
				if err := json.Unmarshal(data, &out); err != nil {
					return 0, fmt.Errorf("%s %s: %s: %w", method, path, data, err)
				}
				if acked.Add(1) == services*steps/3 {
					thirdOnce.Do(func() { close(third) })
				}
				return out.Seq, nil
			case resp.StatusCode >= 500:
				continue // the cluster is electing a leader; the client retries
			default:
				return 0, fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, data)
			}
		}
	}

	killed := make(chan string, 1)
	go func() {
		select {
		case <-third:
		case <-ctx.Done():
			return
		}
		info, err := js.Stream(ctx, "KV_"+vigil.BucketPulses)
		if err != nil {
			t.Errorf("stream info: %v", err)
			close(killed)
			return
		}
		leader := info.CachedInfo().Cluster.Leader
		c.Node(leader).Stop()
		killed <- leader
	}()

	last := make([]uint64, services)
	var wg sync.WaitGroup
	errs := make(chan error, services)
	for i := range services {
		wg.Go(func() {
			name := fmt.Sprintf("svc-%02d", i)
			for step := range steps {
				seq, err := do(name, step)
				if err != nil {
					errs <- fmt.Errorf("%s step %d: %w", name, step, err)
					return
				}
				last[i] = seq
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	leader := <-killed
	t.Logf("stopped the pulse bucket leader %s after %d acknowledged writes", leader, services*steps/3)

	for i := range services {
		name := fmt.Sprintf("svc-%02d", i)
		m, err := bus.LastForSubject(ctx, js, "KV_"+vigil.BucketPulses, vigil.PulseSubject(name))
		if err != nil {
			t.Errorf("%s: read: %v", name, err)
			continue
		}
		var rec vigil.Record
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			t.Fatal(err)
		}
		if m.Sequence != last[i] || rec.Op != vigil.OpCancel {
			t.Errorf("%s: stored seq %d op %q; want the last acknowledged cancel, seq %d", name, m.Sequence, rec.Op, last[i])
		}
	}
}
