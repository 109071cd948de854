package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
)

// One publish to a host's stats subject lands in the history stream and, by
// the bucket's subject-transformed source, as the host's latest value in
// vigil_hosts.
func TestHostStatsSourceIntoBucket(t *testing.T) {
	s := bustest.New(t)
	js := s.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A bucket provisioned before it had a source is updated in place.
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: vigil.BucketHosts, History: 1}); err != nil {
		t.Fatal(err)
	}
	var a *bus.Assets
	for range 2 {
		var err error
		if a, err = bus.Provision(ctx, js, bus.Config{Replicas: 1}); err != nil {
			t.Fatalf("Provision: %v", err)
		}
	}
	for _, host := range []string{"web1", "db.example.com"} {
		for i := range 3 {
			body := fmt.Sprintf(`{"host":%q,"n":%d}`, host, i)
			if _, err := js.Publish(ctx, vigil.HostStatsSubject(host), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, host := range []string{"web1", "db.example.com"} {
		want := fmt.Sprintf(`{"host":%q,"n":2}`, host)
		bustest.Eventually(t, func() error {
			e, err := a.Hosts.Get(ctx, vigil.Token(host))
			if err != nil {
				return err
			}
			if string(e.Value()) != want {
				return fmt.Errorf("vigil_hosts[%s] = %s, want %s", vigil.Token(host), e.Value(), want)
			}
			return nil
		})
	}
	info, err := a.HostStats.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 6 {
		t.Errorf("history holds %d messages, want 6", info.State.Msgs)
	}
	kvs, err := js.Stream(ctx, "KV_"+vigil.BucketHosts)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, func() error {
		ki, err := kvs.Info(ctx)
		if err != nil {
			return err
		}
		if ki.State.Msgs != 2 {
			return fmt.Errorf("vigil_hosts holds %d messages, want 2 (history 1)", ki.State.Msgs)
		}
		return nil
	})
}
