package api

import (
	"errors"
	"net/url"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
)

// FuzzListQuery parses fuzzed query strings of GET /v1/events, /v1/alerts
// and /v1/stream (regular expressions, times, levels, limits, cursors,
// orders and sets) and runs the message filter over a fuzzed text.
// Properties: no panic; every error is a *vigil.FieldError; from <= to;
// the limit is within [1, MaxLimit]; and the folded filter the index runs
// over case-folded messages agrees with the plain case-insensitive regular
// expression on the original text.
func FuzzListQuery(f *testing.F) {
	for _, s := range [][2]string{
		{"service=^db&message=time.?out&level=warning&from=2026-11-21T12:00:00Z&to=1795000000.5&limit=50&order=asc", "Connection TIMEOUT after 5s"},
		{"kind=down,recovered&cursor=czEyMw&service_exact=web&service_exact=db", ""},
		{"types=events,alerts&last_event_id=e:42", ""},
		{"message=(?-i)abc", "abc"},
		{"message=straße", "STRASSE strasse Straße"},
		{"message=[k]elvin", "\u212aelvin"},
		{"message=\\bé\\b", "café é"},
		{"message=(?s).{2}$", "a\nΣ"},
		{"from=1e300&to=-1e300", ""},
		{"from=NaN", ""},
		{"limit=-1", ""},
		{"limit=99999999999999999999", ""},
		{"cursor=%00", ""},
		{"level=9&level=1", ""},
		{"x=1", ""},
		{"message=" + url.QueryEscape("a{1001}"), ""},
	} {
		f.Add(s[0], s[1])
	}
	r := &Role{cfg: DefaultConfig(), now: func() time.Time { return time.Unix(1795000000, 0) }}
	allowed := []string{pService, pServiceExact, pMessage, pLevel, pKind, pFrom, pTo, pLimit, pCursor, pOrder, pTypes, pLastEventID}
	f.Fuzz(func(t *testing.T, raw, text string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http answers these before the handler
		}
		p, err := r.parseList(q, allowed, time.Hour)
		if err != nil {
			var fe *vigil.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, vigil.ErrInvalid) {
				t.Fatalf("parseList(%q) = %v: not a *vigil.FieldError", raw, err)
			}
			return
		}
		if p.from > p.to {
			t.Fatalf("parseList(%q): from %d > to %d", raw, p.from, p.to)
		}
		if p.limit < 1 || p.limit > r.cfg.MaxLimit {
			t.Fatalf("parseList(%q): limit %d outside [1, %d]", raw, p.limit, r.cfg.MaxLimit)
		}
		if p.message == nil || !utf8.ValidString(text) {
			return
		}
		want := p.message.MatchString(text)
		if got := p.folded.match(appendFolded(nil, text)); got != want {
			t.Fatalf("message=%q over %q: folded filter says %v, regexp says %v", q.Get(pMessage), text, got, want)
		}
	})
}
