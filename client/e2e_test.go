package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/client"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
)

func TestAgainstRealServer(t *testing.T) {
	c := newClient(t, stacktest.Serve(t))
	ctx := context.Background()
	names := []string{"db.backup", "my service", "a/b", "100%", "Größe ✓"}
	for _, n := range names {
		rec, err := c.Pulse(ctx, vigil.Pulse{Service: n, NextIn: vigil.Seconds(time.Hour)}, client.WithIdempotencyKey("k-"+n))
		if err != nil {
			t.Fatalf("Pulse(%q): %v", n, err)
		}
		if rec.Service != n || rec.Op != vigil.OpPulse || rec.Seq == 0 {
			t.Errorf("Pulse(%q) = %+v, want a stored pulse record", n, rec)
		}
		// Read-your-write: GET one service reads the bucket itself.
		st, err := c.Service(ctx, n)
		if err != nil {
			t.Fatalf("Service(%q): %v", n, err)
		}
		if st.Name != n || st.Status != vigil.StatusUp || st.Seq != rec.Seq {
			t.Errorf("Service(%q) = %+v, want up at seq %d", n, st, rec.Seq)
		}
	}
	n, err := c.PulseBatch(ctx, []vigil.Pulse{{Service: "b1", NextIn: 1e9}, {Service: "b2", NextIn: 1e9}})
	if n != 2 || err != nil {
		t.Errorf("PulseBatch = %d, %v, want 2, nil", n, err)
	}
	bustest.Eventually(t, func() error {
		all, err := c.AllServices(ctx)
		if err == nil && len(all) != len(names)+2 {
			err = fmt.Errorf("AllServices has %d, want %d", len(all), len(names)+2)
		}
		return err
	})
	rec, err := c.Cancel(ctx, "a/b")
	if err != nil || rec.Op != vigil.OpCancel {
		t.Fatalf("Cancel(a/b) = %+v, %v, want a cancel record", rec, err)
	}
	bustest.Eventually(t, func() error {
		p, err := c.Services(ctx, client.ListOptions{Status: []vigil.Status{vigil.StatusCancelled}})
		if err == nil && (len(p.Items) != 1 || p.Items[0].Name != "a/b") {
			err = fmt.Errorf("cancelled = %+v, want a/b", p.Items)
		}
		return err
	})
	a, err := c.Alert(ctx, vigil.ManualAlert{Service: "db.backup", Title: "restore test", Level: vigil.LevelWarning})
	if err != nil || a.Kind != vigil.AlertManual || a.ID == "" || a.Seq == 0 {
		t.Errorf("Alert = %+v, %v, want a stored manual alert", a, err)
	}

	_, err = c.Pulse(ctx, vigil.Pulse{Service: "x", NextIn: -1})
	var ce *client.Error
	if !errors.Is(err, vigil.ErrInvalid) || !errors.As(err, &ce) || ce.Field != "next_in" {
		t.Errorf("Pulse(next_in -1) = %v, want ErrInvalid on field next_in", err)
	}
	if _, err := c.Service(ctx, "never pulsed"); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("Service(never pulsed) = %v, want ErrNotFound", err)
	}
	if _, err := c.Cancel(ctx, "never pulsed"); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("Cancel(never pulsed) = %v, want ErrNotFound", err)
	}
	if _, err := c.Services(ctx, client.ListOptions{Limit: 5000}); !errors.Is(err, vigil.ErrInvalid) {
		t.Errorf("Services(limit 5000) = %v, want ErrInvalid", err)
	}
}
