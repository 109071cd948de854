// Package toast is the server side of desktop toast notifications: a
// channel.Channel that stores each message on stream VIGIL_TOASTS, subject
// vigil.ToastSubject(target), where the desktop named target picks it up
// (vigil-agent toast subscribes to its own subject; the stream keeps a
// toast for a desktop that is offline until its max age).
package toast

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// Channel publishes toasts on JetStream.
type Channel struct {
	js jetstream.JetStream
}

// New returns a toast channel publishing through js.
func New(js jetstream.JetStream) *Channel { return &Channel{js: js} }

// Type returns "toast".
func (c *Channel) Type() string { return vigil.ChannelToast }

// Send stores m for desktop target (a name of [A-Za-z0-9_-], see
// vigil.Owner) and returns once JetStream acknowledged it. A target that
// is not a valid desktop name is a permanent error; a failed publish is
// transient.
func (c *Channel) Send(ctx context.Context, target string, m channel.Message) error {
	o := vigil.Owner{Type: vigil.ChannelToast, Target: target}
	if err := o.Validate(); err != nil {
		return channel.Permanent(fmt.Errorf("toast target: %w", err))
	}
	t := vigil.Toast{ID: m.ID, Title: m.Title, Body: m.Body, Level: m.Level, URL: m.URL, At: m.At.UTC()}
	switch {
	case len(m.Alerts) == 1:
		t.Service = m.Alerts[0].Service
	case len(m.Alerts) > 1:
		for _, a := range m.Alerts[:min(len(m.Alerts), vigil.MaxToastServices)] {
			t.Services = append(t.Services, a.Service)
		}
	}
	data, err := json.Marshal(&t)
	if err != nil {
		return channel.Permanent(fmt.Errorf("encode toast: %w", err))
	}
	msg := &nats.Msg{Subject: vigil.ToastSubject(target), Data: data, Header: nats.Header{}}
	if m.ID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, m.ID)
	}
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("store toast for %s: %w", target, err)
	}
	return nil
}
