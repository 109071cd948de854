// Package transport carries the agent's messages to vigil: over NATS (the
// default: a JetStream publish of host stats, requests to ingest's direct
// intake for pulses and alerts) or over HTTP (ingest's POST routes with a
// bearer token). Both tell a message the server refused for good
// (ErrRejected: drop it) from one that could not be delivered now (any other
// error: keep it in the offline buffer and retry).
package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-monitor/vigil/agent/buffer"
)

// The kinds of message an Item carries.
const (
	// KindStats is a vigil.HostStats; Item.Key is the host id.
	KindStats = "stats"
	// KindPulse is a vigil.Pulse.
	KindPulse = "pulse"
	// KindAlert is a vigil.ManualAlert.
	KindAlert = "alert"
)

// ErrRejected marks a message the server refused for good (a 4xx other
// than 401, 403, 408 and 429: invalid, too large): resending it cannot help.
var ErrRejected = errors.New("rejected by the server")

// Sender sends one message, identified by Item.ID for deduplication, and
// returns once the server has stored it (the JetStream ack or a 2xx).
type Sender interface {
	Send(ctx context.Context, it buffer.Item) error
	// Check verifies the address and the credentials for host id host
	// without storing anything, like System Monitor's check_url and
	// check_system_id.
	Check(ctx context.Context, host string) Report
	Close()
}

// Report is the outcome of Sender.Check: one line per probe.
type Report []Probe

// Probe is one check: what was checked, whether it passed, and what was
// seen. Info probes tell something (whether the host is registered)
// without failing the check.
type Probe struct {
	Name   string
	OK     bool
	Info   bool
	Detail string
}

// OK reports whether every probe that is not info passed.
func (r Report) OK() bool {
	for _, p := range r {
		if !p.OK && !p.Info {
			return false
		}
	}
	return true
}

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}
