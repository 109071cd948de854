package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/vigil-monitor/vigil"
)

// The Store* methods are the intake operations for in-process callers that
// speak another wire protocol (services/legacy): each runs exactly the code
// path of its HTTP route, so validation, storage and the ack guarantee are
// the same. Errors are those of the routes (*vigil.FieldError,
// vigil.ErrNotFound, vigil.ErrUnavailable, …).

// StorePulse stores p like POST /v1/pulses and returns the stored record;
// origin becomes Record.Origin ("watchtower" selects the notifier's
// watchTower texts).
func (r *Role) StorePulse(ctx context.Context, p vigil.Pulse, origin string) (*vigil.Record, error) {
	body, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("encode pulse: %w", err)
	}
	out, err := r.acceptPulses(ctx, request{contentType: "application/json", body: body, origin: origin})
	if err != nil {
		return nil, err
	}
	var rec vigil.Record
	if err := json.Unmarshal(out, &rec); err != nil {
		return nil, fmt.Errorf("decode stored pulse: %w", err)
	}
	return &rec, nil
}

// StoreCancel cancels service like DELETE /v1/services/{name} and returns
// the stored record; an unknown service wraps vigil.ErrNotFound.
func (r *Role) StoreCancel(ctx context.Context, service string) (*vigil.Record, error) {
	out, err := r.cancel(ctx, request{service: service})
	if err != nil {
		return nil, err
	}
	var rec vigil.Record
	if err := json.Unmarshal(out, &rec); err != nil {
		return nil, fmt.Errorf("decode stored cancel: %w", err)
	}
	return &rec, nil
}

// StoreEvent stores e like POST /v1/events (e.Alert raises its alert too).
func (r *Role) StoreEvent(ctx context.Context, e vigil.Event) error {
	body, err := json.Marshal(&e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	_, err = r.acceptEvents(ctx, request{contentType: "application/json", body: body})
	return err
}

// StoreAlert stores m like POST /v1/alerts and returns the stored alert.
func (r *Role) StoreAlert(ctx context.Context, m vigil.ManualAlert) (*vigil.Alert, error) {
	body, err := json.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	out, err := r.raiseAlert(ctx, request{contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	var a vigil.Alert
	if err := json.Unmarshal(out, &a); err != nil {
		return nil, fmt.Errorf("decode stored alert: %w", err)
	}
	return &a, nil
}

// StoreHostStats validates s and stores it like POST /v1/hosts/{id}/stats
// (subject vigil.HostStatsSubject(s.Host); KV bucket vigil_hosts follows).
// It returns the stream sequence.
func (r *Role) StoreHostStats(ctx context.Context, s *vigil.HostStats) (uint64, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("encode host stats: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	ack, err := r.assets.JS.PublishMsg(ctx, &nats.Msg{Subject: vigil.HostStatsSubject(s.Host), Data: data})
	if err != nil {
		return 0, fmt.Errorf("store host stats: %w: %w", vigil.ErrUnavailable, err)
	}
	return ack.Sequence, nil
}
