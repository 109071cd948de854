// Package toast is the desktop side of vigil's toast channel (vigil-agent
// toast, a Traylert-style client): it follows the toasts for one desktop
// name and shows each once as a native notification (package desktop).
//
// Over NATS it reads stream VIGIL_TOASTS filtered to
// vigil.ToastSubject(name) with an ordered consumer, starting after the
// last toast it showed (its stream sequence is kept in the state
// directory), so toasts raised while the desktop was off are shown once when
// it comes back, up to a maximum age. Over HTTP, where a desktop reaches
// only the API, it reads the API's Server-Sent Events stream
// (GET /v1/stream?types=alerts) and shows the alerts whose owner is this
// desktop, resuming with Last-Event-ID.
package toast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/desktop"
)

// Config says which toasts a Client shows.
type Config struct {
	// Name is this desktop's toast target name.
	Name string
	// MaxAge: older toasts are skipped, not shown (default 24 h).
	MaxAge time.Duration
	// StateDir keeps the position of the last toast shown.
	StateDir string
}

// Client follows one desktop's toasts.
type Client struct {
	cfg   Config
	show  desktop.Notifier
	log   *slog.Logger
	now   func() time.Time
	state state
	path  string
}

// state is the client's saved position: the stream sequence of the last
// toast handled (NATS), the last SSE event id (HTTP), and the ids of the
// last toasts shown, so one seen twice is shown once.
type state struct {
	Seq    uint64   `json:"seq,omitempty"`
	Stream string   `json:"stream,omitempty"`
	Event  string   `json:"event,omitempty"`
	IDs    []string `json:"ids,omitempty"`
}

// recentIDs is how many shown ids the state remembers.
const recentIDs = 256

// New returns a client that shows toasts with show; now is the clock (nil:
// time.Now). It reads the saved position, if any.
func New(cfg Config, show desktop.Notifier, log *slog.Logger, now func() time.Time) (*Client, error) {
	if err := (&vigil.Owner{Type: vigil.ChannelToast, Target: cfg.Name}).Validate(); err != nil {
		return nil, fmt.Errorf("toast name %q: %w", cfg.Name, err)
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	c := &Client{cfg: cfg, show: show, log: log, now: now, path: filepath.Join(cfg.StateDir, "toast-"+cfg.Name+".json")}
	if b, err := os.ReadFile(c.path); err == nil {
		if err := json.Unmarshal(b, &c.state); err != nil {
			log.Warn("ignoring unreadable toast position", "file", c.path, "err", err)
			c.state = state{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("toast state: %w", err)
	}
	return c, nil
}

// RunNATS shows the desktop's toasts from stream VIGIL_TOASTS until ctx
// ends, then returns nil. It starts after the saved position, or at
// now − MaxAge on the first run or when the stream was recreated. It fails
// when the stream cannot be read or the consumer cannot be created (a
// permission the desktop's credentials lack).
func (c *Client) RunNATS(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, vigil.StreamToasts)
	if err != nil {
		return fmt.Errorf("toast: stream %s: %w", vigil.StreamToasts, err)
	}
	info := s.CachedInfo()
	created := info.Created.UTC().Format(time.RFC3339Nano)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{vigil.ToastSubject(c.cfg.Name)}}
	if c.state.Seq > 0 && c.state.Stream == created && c.state.Seq <= info.State.LastSeq {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.state.Seq+1
	} else {
		start := c.now().Add(-c.cfg.MaxAge)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
		c.state.Seq, c.state.Stream = 0, created
	}
	cons, err := js.OrderedConsumer(ctx, vigil.StreamToasts, cfg)
	if err != nil {
		return fmt.Errorf("toast: consumer on %s: %w", vigil.ToastSubject(c.cfg.Name), err)
	}
	c.log.Info("toast client following", "name", c.cfg.Name, "subject", vigil.ToastSubject(c.cfg.Name), "after_seq", c.state.Seq)
	for {
		msgs, err := cons.Messages()
		if err != nil {
			return fmt.Errorf("toast: %w", err)
		}
		stop := context.AfterFunc(ctx, msgs.Stop)
		err = c.drain(ctx, msgs)
		stop()
		msgs.Stop()
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("toast consumer ended, resuming", "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// drain handles messages until the iterator stops.
func (c *Client) drain(ctx context.Context, msgs jetstream.MessagesContext) error {
	for {
		m, err := msgs.Next()
		if err != nil {
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		var t vigil.Toast
		if err := json.Unmarshal(m.Data(), &t); err != nil {
			c.log.Warn("skipping undecodable toast", "seq", md.Sequence.Stream, "err", err)
		} else {
			if t.At.IsZero() {
				t.At = md.Timestamp
			}
			c.handle(ctx, t)
		}
		c.state.Seq = md.Sequence.Stream
		c.save()
	}
}

// handle shows t unless it is too old or was shown already.
func (c *Client) handle(ctx context.Context, t vigil.Toast) {
	if age := c.now().Sub(t.At); age > c.cfg.MaxAge {
		c.log.Info("skipping old toast", "id", t.ID, "age", age.Round(time.Second))
		return
	}
	if t.ID != "" && slices.Contains(c.state.IDs, t.ID) {
		return
	}
	body := t.Body
	if len(t.Services) > 0 && body == "" {
		body = fmt.Sprint(t.Services)
	}
	if err := c.show.Notify(ctx, desktop.Note{Title: t.Title, Body: body, Level: t.Level, URL: t.URL}); err != nil {
		c.log.Warn("toast not shown", "id", t.ID, "err", err)
		return
	}
	c.log.Info("toast shown", "id", t.ID, "title", t.Title)
	if t.ID != "" {
		c.state.IDs = append(c.state.IDs, t.ID)
		if len(c.state.IDs) > recentIDs {
			c.state.IDs = c.state.IDs[len(c.state.IDs)-recentIDs:]
		}
	}
}

func (c *Client) save() {
	b, err := json.Marshal(c.state)
	if err != nil {
		return
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		c.log.Warn("cannot save toast position", "err", err)
		return
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, c.path)
		if err != nil {
			c.log.Warn("cannot save toast position", "err", err)
		}
	}
}
