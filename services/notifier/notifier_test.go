package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/notifier"
)

func TestNotifierConsumesAndAcks(t *testing.T) {
	s := bustest.New(t)
	assets := s.Provision(t)
	reg := prometheus.NewRegistry()
	r, err := notifier.New(notifier.DefaultConfig(), notifier.Deps{
		Conn: s.Conn(t), Assets: assets, Log: bustest.Logger(t), Metrics: reg,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}()

	a := vigil.Alert{
		ID: "down:backup:1", Kind: vigil.AlertDown, Service: "backup", Title: "backup is down",
		Level: vigil.LevelError, Owner: &vigil.Owner{Type: vigil.ChannelPushover, Target: "secretkey"},
	}
	body, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	if _, err := assets.JS.Publish(pctx, vigil.AlertSubject(a.Kind, a.Service), body, jetstream.WithMsgID(a.ID)); err != nil {
		t.Fatalf("publish alert: %v", err)
	}

	// Wait until the consumer exists, the alert is acknowledged and counted.
	var info *jetstream.ConsumerInfo
	bustest.Eventually(t, func() error {
		c, err := assets.JS.Consumer(pctx, vigil.StreamAlerts, notifier.Consumer)
		if err != nil {
			return err
		}
		info, err = c.Info(pctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Consumer < 1 || info.NumAckPending != 0 {
			return errors.New("alert not acknowledged yet")
		}
		if alertsTotal(t, reg, "down") < 1 {
			return errors.New("alert not counted yet")
		}
		return nil
	})
	if info.Delivered.Consumer != 1 || info.NumRedelivered != 0 {
		t.Errorf("consumer delivered %d (redelivered %d), want 1 (0)", info.Delivered.Consumer, info.NumRedelivered)
	}
	if got := alertsTotal(t, reg, "down"); got != 1 {
		t.Errorf("vigil_notifier_alerts_total{kind=down} = %v, want 1", got)
	}
}

func TestNotifierRestartKeepsPosition(t *testing.T) {
	s := bustest.New(t)
	assets := s.Provision(t)
	for range 2 {
		r, err := notifier.New(notifier.DefaultConfig(), notifier.Deps{
			Conn: s.Conn(t), Assets: assets, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry(),
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		bustest.Eventually(t, func() error {
			_, err := assets.JS.Consumer(context.Background(), vigil.StreamAlerts, notifier.Consumer)
			return err
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	}
}

// alertsTotal returns vigil_notifier_alerts_total{kind} from reg, 0 when absent.
func alertsTotal(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_notifier_alerts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
