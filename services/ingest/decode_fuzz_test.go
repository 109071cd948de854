package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

// fuzzMaxBatch is the batch cap of the fuzz targets: small, so the fuzzer
// reaches it.
const fuzzMaxBatch = 8

// fuzzForms maps a fuzzed selector onto the NATS intake's form when there is
// no Content-Type; HTTP always has one.
func fuzzForm(ct string, auto bool) (form, error) {
	empty := formJSON
	if auto {
		empty = formAuto
	}
	return mediaForm(ct, true, empty)
}

// checkIntakeError fails t unless err is one of the errors the intake maps
// onto a 4xx answer: a *vigil.FieldError (400), ErrTooLarge (413) or
// ErrUnsupportedMedia (415). Anything else would be answered 503.
func checkIntakeError(t *testing.T, in []byte, err error) {
	t.Helper()
	switch {
	case errors.Is(err, vigil.ErrTooLarge), errors.Is(err, vigil.ErrUnsupportedMedia):
	case errors.Is(err, vigil.ErrInvalid):
		var fe *vigil.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("decode(%q) = %v: invalid but not a *vigil.FieldError", in, err)
		}
	default:
		t.Fatalf("decode(%q) = %v: not a 4xx error", in, err)
	}
}

// FuzzDecodePulses feeds POST /v1/pulses and vigil.in.pulse bodies (one JSON
// pulse, a JSON array, NDJSON, or the NATS intake's auto form) through the
// decoder, validation and the hand-written record encoder. Properties: no
// panic; at most fuzzMaxBatch pulses; every error is a 4xx error; an
// accepted application/json body is one JSON value; a valid
// pulse encodes to a JSON record that encoding/json reads back with the same
// service, host and message, and whose subject is a single safe token.
func FuzzDecodePulses(f *testing.F) {
	for _, s := range []struct {
		ct   string
		auto bool
		body string
	}{
		{"application/json", false, `{"service":"db backup","next_in":60}`},
		{"", true, `{"service":"a","next_in":1} {"service":"b","next_in":2}`},
		{"application/x-ndjson", false, "{\"service\":\"a\",\"next_in\":1}\n{\"service\":\"b\",\"next_in\":2,\"grace\":5}\n"},
		{"application/json; charset=utf-8", false, `[{"service":"a","next_in":1},{"service":"b.c","next_in":2,"owner":{"type":"mail","target":"x@y.z"}}]`},
		{"application/json", false, `[]`},
		{"application/json", false, `[{"service":"a","next_in":1},]`},
		{"application/json", false, `{"service":"a>","next_in":1e308,"host":"\u0000"}`},
		{"application/json; charset=latin1", false, `{}`},
		{"text/plain", false, `{}`},
		{"application/json", false, `{"service":"*","next_in":-1,"message":"\ud800"}`},
		{"", true, `[1,2,3,4,5,6,7,8,9]`},
		{"application/json", false, "{\"service\":\"a\",\"next_in\":1}\x00junk"},
		{"", true, "{\"service\":\"a\",\"next_in\":1}\x00"},
	} {
		f.Add(s.ct, s.auto, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, auto bool, body []byte) {
		fm, err := fuzzForm(ct, auto)
		if err != nil {
			checkIntakeError(t, []byte(ct), err)
			return
		}
		pulses, single, err := decodePulses(body, fm, fuzzMaxBatch)
		if err != nil {
			checkIntakeError(t, body, err)
			return
		}
		if len(pulses) == 0 || len(pulses) > fuzzMaxBatch || single && len(pulses) != 1 {
			t.Fatalf("decodePulses(%q) = %d pulses (single %v), want 1..%d", body, len(pulses), single, fuzzMaxBatch)
		}
		if fm == formJSON && !json.Valid(body) {
			t.Fatalf("decodePulses(%q) accepted a JSON body that is not one JSON value", body)
		}
		for i := range pulses {
			p := &pulses[i]
			if err := p.Validate(); err != nil {
				checkIntakeError(t, body, err)
				continue
			}
			checkSubject(t, vigil.PulseSubject(p.Service), pulseSubjectPrefix)
			rec := vigil.Record{Op: vigil.OpPulse, Pulse: *p, At: time.Unix(1700000000, 0).UTC(), ID: "id"}
			data := appendRecord(nil, &rec)
			var back vigil.Record
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("appendRecord(%+v) = %q: not JSON: %v", rec, data, err)
			}
			if back.Service != p.Service || back.Host != p.Host || back.Message != p.Message {
				t.Fatalf("appendRecord round trip: got service %q host %q message %q, want %q %q %q",
					back.Service, back.Host, back.Message, p.Service, p.Host, p.Message)
			}
		}
	})
}

// pulseSubjectPrefix is what vigil.PulseSubject puts before the token.
var pulseSubjectPrefix = strings.TrimSuffix(vigil.PulseSubject("x"), "x")

// checkSubject fails t unless subject is prefix followed by one token without
// subject syntax.
func checkSubject(t *testing.T, subject, prefix string) {
	t.Helper()
	tok, ok := strings.CutPrefix(subject, prefix)
	if !ok || tok == "" || strings.ContainsAny(tok, ".*> \t\r\n\x00") {
		t.Fatalf("subject %q: want %s and one safe token", subject, prefix)
	}
}

// FuzzDecodeEvents is FuzzDecodePulses for POST /v1/events and
// vigil.in.event: the event scanner, validation and appendEvent.
func FuzzDecodeEvents(f *testing.F) {
	for _, s := range []struct {
		ct   string
		auto bool
		body string
	}{
		{"application/json", false, `{"service":"web","message":"deployed","level":"info"}`},
		{"application/json", false, `{"service":"web","message":"disk","level":3,"alert":true,"attrs":{"k":"v"},"at":"2026-01-02T03:04:05Z"}`},
		{"application/x-ndjson", false, "{\"service\":\"a\",\"message\":\"m\"}\n{\"service\":\"b\",\"message\":\"n\",\"level\":\"critical\"}"},
		{"", true, `[{"service":"a","message":"m"}]`},
		{"application/json", false, `{"service":"a","message":"m","level":"nope"}`},
		{"application/json", false, `{"service":"a","message":"m","at":"yesterday"}`},
		{"application/json", false, `{"service":"a","message":"m","attrs":{"k":1}}`},
		{"application/json", false, `{"service":"a","message":"m","attrs":{"k":"v","k":"w"}}`},
		{"application/json", false, `{"service":"a.b","message":"\u2028\"<script>","alert":"yes"}`},
	} {
		f.Add(s.ct, s.auto, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, auto bool, body []byte) {
		fm, err := fuzzForm(ct, auto)
		if err != nil {
			checkIntakeError(t, []byte(ct), err)
			return
		}
		events, single, err := decodeBatch(body, fm, fuzzMaxBatch, "event", (*scanner).event)
		if err != nil {
			checkIntakeError(t, body, err)
			return
		}
		if len(events) == 0 || len(events) > fuzzMaxBatch || single && len(events) != 1 {
			t.Fatalf("decode events(%q) = %d events (single %v), want 1..%d", body, len(events), single, fuzzMaxBatch)
		}
		if fm == formJSON && !json.Valid(body) {
			t.Fatalf("decode events(%q) accepted a JSON body that is not one JSON value", body)
		}
		for i := range events {
			e := &events[i]
			if err := e.Validate(); err != nil {
				checkIntakeError(t, body, err)
				continue
			}
			e.Received, e.ID = time.Unix(1700000000, 0).UTC(), "id"
			data := appendEvent(nil, e)
			var back vigil.Event
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("appendEvent(%+v) = %q: not JSON: %v", e, data, err)
			}
			if back.Service != e.Service || back.Message != e.Message || len(back.Attrs) != len(e.Attrs) {
				t.Fatalf("appendEvent round trip: got %+v, want %+v", back, *e)
			}
		}
	})
}

// FuzzDecodeAlert covers POST /v1/alerts and vigil.in.alert (decodeAlert)
// and vigil.in.cancel (decodeCancel): no panic, 4xx errors only, and a valid
// alert's service encodes to a safe subject token.
func FuzzDecodeAlert(f *testing.F) {
	for _, s := range []string{
		`{"service":"db","title":"disk full","message":"/var at 99%","level":"critical"}`,
		`{"service":"db","title":"t","owner":{"type":"pushover","target":"u123"}}`,
		`{"service":"db","title":"t","owner":{"type":"mail","target":"a@b.c","x":1}}`,
		`{"service":"db","title":"t","level":7}`,
		`{"service":"db"} trailing`,
		`{"service":"db"}`,
		`null`, `[]`, ``, `{"service":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if name, err := decodeCancel(body); err != nil {
			checkIntakeError(t, body, err)
		} else if vigil.ValidateName(name) == nil {
			checkSubject(t, vigil.PulseSubject(name), pulseSubjectPrefix)
		}
		m, err := decodeAlert(body)
		if err != nil {
			checkIntakeError(t, body, err)
			return
		}
		if err := m.Validate(); err != nil {
			checkIntakeError(t, body, err)
			return
		}
		if _, err := json.Marshal(&m); err != nil {
			t.Fatalf("json.Marshal(%+v): %v", m, err)
		}
	})
}

// FuzzDecodeHostStats covers POST /v1/hosts/{id}/stats (decodeHostStats and
// HostStats.Validate): no panic, 4xx errors only, and an accepted body is
// exactly one JSON value.
func FuzzDecodeHostStats(f *testing.F) {
	for _, s := range []string{
		`{"host":"web-1","at":"2026-01-02T03:04:05Z","interval":60,"cpu":{"count":4,"percent_used":12.5},"memory":{"total":1024,"used":512},"disks":[{"mount_point":"/","total":10,"used":5}]}`,
		`{"host":"web-1","at":"not a time"}`,
		`{"cpu":{"count":"four"}}`,
		`{} {}`, `{}]`, `{}}`, `[]`, `null`, ` `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeHostStats(body)
		if err != nil {
			checkIntakeError(t, body, err)
			return
		}
		if !json.Valid(bytes.TrimSpace(body)) {
			t.Fatalf("decodeHostStats(%q) accepted a body that is not one JSON value", body)
		}
		if err := s.Validate(); err != nil {
			checkIntakeError(t, body, err)
		}
	})
}
