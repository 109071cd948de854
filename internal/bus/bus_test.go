package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

func TestProvisionIsIdempotent(t *testing.T) {
	s := bustest.New(t)
	js := s.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := bus.Provision(ctx, js, bus.Config{Replicas: 1}); err != nil {
			t.Fatalf("Provision #%d: %v", i, err)
		}
	}
	st, err := js.Stream(ctx, "KV_"+vigil.BucketPulses)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Duplicates; got != 2*time.Minute {
		t.Errorf("pulse dedup window = %v, want 2m", got)
	}
	if got := st.CachedInfo().Config.MaxMsgsPerSubject; got != 1 {
		t.Errorf("pulse history = %d, want 1", got)
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := bustest.NewInDir(t, dir)
	a := s.Provision(t)
	ctx := context.Background()
	if _, err := a.JS.Publish(ctx, vigil.PulseSubject("db.backup"), []byte(`{"op":"pulse"}`)); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s2 := bustest.NewInDir(t, dir)
	a2 := s2.Provision(t)
	e, err := a2.Pulses.Get(ctx, vigil.Token("db.backup"))
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if string(e.Value()) != `{"op":"pulse"}` {
		t.Errorf("value = %s", e.Value())
	}
}
