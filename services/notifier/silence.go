package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// Silence mutes the notifications that match all its Matchers between
// StartsAt and EndsAt. It follows Alertmanager's silences (matchers,
// starts/ends, created by, comment) with snake_case JSON keys. Silences
// live in KV bucket vigil_silences under their ID; expiring one sets EndsAt
// to now, so its record stays visible.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	UpdatedAt time.Time `json:"updated_at"`
	// Status is computed on read: pending before StartsAt, active until
	// EndsAt, expired after.
	Status *SilenceStatus `json:"status,omitempty"`
}

// SilenceStatus is a silence's state at the time of the request.
type SilenceStatus struct {
	State string `json:"state"`
}

// Matcher tests one field of a notification: Name is service, kind, host,
// channel or target (the job's receiver); Value is compared for equality,
// or as an anchored RE2 regular expression when IsRegex is set. IsEqual
// false negates the test (Alertmanager's != and !~); it defaults to true.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"is_regex"`
	IsEqual *bool  `json:"is_equal,omitempty"`

	re *regexp.Regexp
}

// MatcherNames are the fields a Matcher may test.
var MatcherNames = []string{"service", "kind", "host", "channel", "target"}

// Limits on a silence, in bytes or counts.
const (
	maxSilenceBody  = 64 << 10
	maxMatchers     = 16
	maxMatcherValue = 1024
	maxComment      = 4096
	maxCreatedBy    = 256
)

// validate checks the silence as given to POST /v1/silences and compiles
// its matchers. It returns a *vigil.FieldError naming the field
// ("matchers[0].value", "ends_at").
func (s *Silence) validate(now time.Time) error {
	if len(s.Matchers) == 0 {
		return vigil.Invalid("matchers", "at least one matcher is required")
	}
	if len(s.Matchers) > maxMatchers {
		return vigil.Invalid("matchers", "at most %d matchers", maxMatchers)
	}
	for i := range s.Matchers {
		if err := s.Matchers[i].compile(); err != nil {
			return vigil.PrefixField(fmt.Sprintf("matchers[%d]", i), err)
		}
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	switch {
	case s.EndsAt.IsZero():
		return vigil.Invalid("ends_at", "is required")
	case !s.EndsAt.After(s.StartsAt):
		return vigil.Invalid("ends_at", "must be after starts_at")
	case !s.EndsAt.After(now):
		return vigil.Invalid("ends_at", "must be in the future")
	case s.CreatedBy == "":
		return vigil.Invalid("created_by", "is required")
	case len(s.CreatedBy) > maxCreatedBy || !utf8.ValidString(s.CreatedBy):
		return vigil.Invalid("created_by", "must be valid UTF-8 of at most %d bytes", maxCreatedBy)
	case s.Comment == "":
		return vigil.Invalid("comment", "is required")
	case len(s.Comment) > maxComment || !utf8.ValidString(s.Comment):
		return vigil.Invalid("comment", "must be valid UTF-8 of at most %d bytes", maxComment)
	}
	return nil
}

func (m *Matcher) compile() error {
	if !slices.Contains(MatcherNames, m.Name) {
		return vigil.Invalid("name", "must be one of service, kind, host, channel, target")
	}
	if len(m.Value) > maxMatcherValue || !utf8.ValidString(m.Value) {
		return vigil.Invalid("value", "must be valid UTF-8 of at most %d bytes", maxMatcherValue)
	}
	if !m.IsRegex {
		if m.Value == "" {
			return vigil.Invalid("value", "is required")
		}
		return nil
	}
	// The value must parse on its own: "a)|(b" would otherwise escape the
	// anchors around it and match anything that starts with a.
	if _, err := syntax.Parse(m.Value, syntax.Perl); err != nil {
		return vigil.Invalid("value", "is not a valid regular expression: %v", err)
	}
	re, err := regexp.Compile("^(?:" + m.Value + ")$")
	if err != nil {
		return vigil.Invalid("value", "is not a valid regular expression: %v", err)
	}
	m.re = re
	return nil
}

// matches tests the matcher against the notification's fields.
func (m *Matcher) matches(f map[string]string) bool {
	v := f[m.Name]
	var ok bool
	if m.re != nil {
		ok = m.re.MatchString(v)
	} else {
		ok = v == m.Value
	}
	if m.IsEqual != nil && !*m.IsEqual {
		return !ok
	}
	return ok
}

// state returns pending, active or expired at now.
func (s *Silence) state(now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return "pending"
	case now.Before(s.EndsAt):
		return "active"
	}
	return "expired"
}

// mutes reports whether the silence is active at now and all its matchers
// match fields.
func (s *Silence) mutes(f map[string]string, now time.Time) bool {
	if s.state(now) != "active" {
		return false
	}
	for i := range s.Matchers {
		if !s.Matchers[i].matches(f) {
			return false
		}
	}
	return true
}

// silenceFields returns what matchers test for alert a sent to (channel,
// target).
func silenceFields(a *vigil.Alert, channel, target string) map[string]string {
	return map[string]string{
		"service": a.Service, "kind": string(a.Kind), "host": a.Host, "channel": channel, "target": target,
	}
}

// decodeSilence reads a stored silence and compiles its matchers.
func decodeSilence(b []byte) (*Silence, error) {
	var s Silence
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode silence: %w", err)
	}
	for i := range s.Matchers {
		if err := s.Matchers[i].compile(); err != nil {
			return nil, fmt.Errorf("silence %s: %w", s.ID, err)
		}
	}
	return &s, nil
}

// silences is the notifier's view of KV bucket vigil_silences, kept
// current by a watcher.
type silences struct {
	mu   sync.RWMutex
	byID map[string]*Silence
	revs map[string]uint64
	// ready is closed once the initial values have been read.
	ready chan struct{}
	once  sync.Once
}

func newSilences() *silences {
	return &silences{byID: map[string]*Silence{}, revs: map[string]uint64{}, ready: make(chan struct{})}
}

// watch follows the bucket until ctx ends. It returns an error only when
// the watch cannot start.
func (v *silences) watch(ctx context.Context, kv jetstream.KeyValue, log interface{ Warn(string, ...any) }) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch silences: %w", err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		purge := time.NewTicker(time.Hour)
		defer purge.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-purge.C:
				v.purge(ctx, kv, now)
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					v.once.Do(func() { close(v.ready) })
					continue
				}
				v.apply(e, log)
			}
		}
	}()
	return nil
}

func (v *silences) apply(e jetstream.KeyValueEntry, log interface{ Warn(string, ...any) }) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.byID, e.Key())
		delete(v.revs, e.Key())
		return
	}
	s, err := decodeSilence(e.Value())
	if err != nil {
		log.Warn("notifier: bad silence ignored", "key", e.Key(), "err", err)
		return
	}
	v.byID[e.Key()] = s
	v.revs[e.Key()] = e.Revision()
}

// silenceRetention is how long an expired silence stays visible before the
// notifier deletes it (Alertmanager's default retention, 120 h).
const silenceRetention = 120 * time.Hour

// purge deletes the silences that expired more than silenceRetention
// before now. Each delete is conditional on the revision seen, so a silence
// changed meanwhile stays; replicas racing to delete do no harm.
func (v *silences) purge(ctx context.Context, kv jetstream.KeyValue, now time.Time) {
	type old struct {
		id  string
		rev uint64
	}
	var gone []old
	v.mu.RLock()
	for id, s := range v.byID {
		if now.Sub(s.EndsAt) > silenceRetention {
			gone = append(gone, old{id, v.revs[id]})
		}
	}
	v.mu.RUnlock()
	for _, o := range gone {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = kv.Delete(dctx, o.id, jetstream.LastRevision(o.rev))
		cancel()
	}
}

// muted returns the id of an active silence that mutes alert a for
// (channel, target), or "".
func (v *silences) muted(a *vigil.Alert, channel, target string, now time.Time) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(v.byID) == 0 {
		return ""
	}
	f := silenceFields(a, channel, target)
	for id, s := range v.byID {
		if s.mutes(f, now) {
			return id
		}
	}
	return ""
}

// errSilenceNotFound marks an unknown silence id.
var errSilenceNotFound = fmt.Errorf("silence: %w", vigil.ErrNotFound)

// getSilence reads silence id from the bucket with its revision.
func getSilence(ctx context.Context, kv jetstream.KeyValue, id string) (*Silence, uint64, error) {
	if !validSilenceID(id) {
		return nil, 0, errSilenceNotFound
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, errSilenceNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read silence: %w: %w", vigil.ErrUnavailable, err)
	}
	s, err := decodeSilence(e.Value())
	if err != nil {
		return nil, 0, err
	}
	return s, e.Revision(), nil
}

func validSilenceID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
