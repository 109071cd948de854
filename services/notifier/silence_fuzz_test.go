package notifier

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

// FuzzSilence feeds POST /v1/silences bodies through the handler's strict
// decoding and validation, then stores and reloads an accepted silence as
// the notifier's watcher does. Properties: no panic; errors are
// *vigil.FieldError; an accepted silence reloads (decodeSilence) with the
// same matchers; a regular expression matcher is a whole expression on its
// own, so the anchors around it cannot be escaped ("a)|(b" would match
// anything starting with a); and matching arbitrary fields never panics.
func FuzzSilence(f *testing.F) {
	for _, s := range []string{
		`{"matchers":[{"name":"service","value":"db-.*","is_regex":true}],"ends_at":"2027-01-01T00:00:00Z","created_by":"ops","comment":"maintenance"}`,
		`{"matchers":[{"name":"channel","value":"mail","is_equal":false}],"starts_at":"2026-12-01T00:00:00Z","ends_at":"2026-12-02T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"matchers":[{"name":"service","value":"a)|(b","is_regex":true}],"ends_at":"2027-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"matchers":[{"name":"host","value":"(?i)WEB\\d+","is_regex":true}],"ends_at":"2027-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"matchers":[{"name":"nope","value":"x"}],"ends_at":"2027-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"matchers":[],"ends_at":"2027-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"id":"x","matchers":[{"name":"kind","value":"down"}],"ends_at":"2027-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"matchers":[{"name":"kind","value":"down"}],"ends_at":"2020-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
		`{"matchers":[{"name":"kind","value":"down"}],"ends_at":"yesterday"}`,
		`{"matchers":[{"name":"target","value":"x{1000}{1000}","is_regex":true}],"ends_at":"2027-01-01T00:00:00Z","created_by":"a","comment":"b"}`,
	} {
		f.Add([]byte(s), "db-1", "down")
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, service, kind string) {
		var s Silence
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if dec.Decode(&s) != nil || s.ID != "" {
			return // the handler answers 400 before validation
		}
		s.Status = nil
		if err := s.validate(now); err != nil {
			var fe *vigil.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("validate(%q) = %v: not a *vigil.FieldError", body, err)
			}
			return
		}
		for _, m := range s.Matchers {
			if m.IsRegex {
				if _, err := regexp.Compile(m.Value); err != nil {
					t.Fatalf("matcher %q accepted, but it is no regular expression on its own: %v", m.Value, err)
				}
			}
		}
		s.ID, s.UpdatedAt = "id", now
		data, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("marshal %+v: %v", s, err)
		}
		back, err := decodeSilence(data)
		if err != nil {
			t.Fatalf("an accepted silence does not reload: %v (%s)", err, data)
		}
		if len(back.Matchers) != len(s.Matchers) {
			t.Fatalf("reloaded %d matchers, want %d", len(back.Matchers), len(s.Matchers))
		}
		fields := map[string]string{"service": service, "kind": kind, "host": service, "channel": kind, "target": service}
		if back.mutes(fields, now.Add(time.Minute)) != s.mutes(fields, now.Add(time.Minute)) {
			t.Fatalf("the reloaded silence mutes %v differently", fields)
		}
	})
}
