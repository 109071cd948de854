// Package channel is the contract between the notifier and its delivery
// channels. Each channel (mail, pushover, webhook, toast) is a small package
// that implements Channel; the notifier owns queueing, retries, dedup and
// history, so a channel only turns one Message into one provider request and
// says whether a failure is worth retrying.
package channel

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-monitor/vigil"
)

// Message is one rendered notification for one target.
type Message struct {
	// ID is stable per (alert, channel, target) delivery job. Channels pass
	// it to the provider where the provider can dedup or thread on it (mail
	// Message-ID, webhook X-Vigil-Delivery header).
	ID string
	// Title and Body are the rendered templates: plain UTF-8 text.
	Title, Body string
	// Level is the alert's severity; channels map it to their own priority.
	Level vigil.Level
	// URL links to the service or alert in vigil's pages; may be empty.
	URL string
	// Alerts are the alerts this message tells about: one, or several when a
	// mass outage is grouped into one notification per target.
	Alerts []vigil.Alert
	// At is when the first alert was raised.
	At time.Time
}

// Channel delivers messages of one owner type.
type Channel interface {
	// Type is the owner type the channel serves: "mail", "pushover",
	// "webhook" or "toast" (vigil.Owner.Type).
	Type() string
	// Send delivers m to target (an address, a Pushover user or group key,
	// a URL, a desktop name) and returns nil once the provider accepted it.
	// An error wrapped with Permanent will not succeed on retry; any other
	// error is transient and the notifier retries with back-off. Send must
	// honour ctx's deadline and be safe for concurrent use.
	Send(ctx context.Context, target string, m Message) error
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that IsPermanent reports true: the delivery goes to
// the dead letters at once instead of being retried. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
