package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"

	"github.com/vigil-monitor/vigil"
)

// form is the shape a request body is read in.
type form int

const (
	// formJSON is one JSON pulse or a JSON array of them.
	formJSON form = iota
	// formNDJSON is one JSON pulse per line; always answered as a batch.
	formNDJSON
	// formAuto is what the NATS intake reads without a Content-Type header:
	// an array, or one or more objects separated by whitespace (NDJSON); a
	// lone object is answered as a single pulse.
	formAuto
)

// mediaForm maps a Content-Type header to a body form: application/json
// (charset utf-8 or none) and an empty header are JSON, application/x-ndjson
// and application/jsonl are NDJSON when ndjson is allowed; anything else wraps
// vigil.ErrUnsupportedMedia. empty is the form of a missing header.
func mediaForm(ct string, ndjson bool, empty form) (form, error) {
	switch ct {
	case "":
		return empty, nil
	case "application/json":
		return formJSON, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("content type %q: %w", ct, vigil.ErrUnsupportedMedia)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return 0, fmt.Errorf("charset %q: JSON must be utf-8: %w", cs, vigil.ErrUnsupportedMedia)
	}
	switch {
	case mt == "application/json":
		return formJSON, nil
	case ndjson && (mt == "application/x-ndjson" || mt == "application/jsonl"):
		return formNDJSON, nil
	}
	want := "application/json"
	if ndjson {
		want += ", application/x-ndjson or application/jsonl"
	}
	return 0, fmt.Errorf("content type %q, want %s: %w", mt, want, vigil.ErrUnsupportedMedia)
}

// wireAlert is a vigil.ManualAlert as it arrives. Alerts are rare, so they go
// through encoding/json; the owner stays raw so that an unknown owner field
// is reported as "owner.x", which encoding/json cannot do for nested objects.
type wireAlert struct {
	Service string          `json:"service"`
	Title   string          `json:"title"`
	Message string          `json:"message"`
	Level   vigil.Level     `json:"level"`
	Owner   json.RawMessage `json:"owner"`
}

func decodeOwner(raw json.RawMessage) (*vigil.Owner, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	o := new(vigil.Owner)
	if err := d.Decode(o); err != nil {
		return nil, vigil.PrefixField("owner", decodeError(err))
	}
	return o, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// decodePulses reads the pulses of body in form f, strictly: unknown fields,
// wrong types, malformed JSON and trailing data are *vigil.FieldError (with
// the item index as "[i]" in a batch), more than maxBatch pulses wraps
// vigil.ErrTooLarge. single says whether the body was one object to be
// answered with its record rather than batch counts.
func decodePulses(body []byte, f form, maxBatch int) (pulses []vigil.Pulse, single bool, err error) {
	return decodeBatch(body, f, maxBatch, "pulse", (*scanner).pulse)
}

// decodeBatch reads the items of body in form f with item, which reads one
// JSON object; noun names an item in error messages ("pulse", "event").
// Errors and single are as for decodePulses.
func decodeBatch[T any](body []byte, f form, maxBatch int, noun string, item func(*scanner) (T, error)) (items []T, single bool, err error) {
	s := &scanner{b: body}
	switch c := s.peek(); {
	case s.atEnd():
		return nil, false, vigil.Invalid("", "empty body: want a JSON %s, an array of %ss or NDJSON", noun, noun)
	case c == '[' && f != formNDJSON:
		s.i++
		if s.peek() == ']' {
			return nil, false, vigil.Invalid("", "empty batch: want at least one %s", noun)
		}
		for i := 0; ; i++ {
			if i == maxBatch {
				return nil, false, tooMany(maxBatch, noun)
			}
			p, err := item(s)
			if err != nil {
				return nil, false, prefixed(index(i), err)
			}
			items = append(items, p)
			switch s.peek() {
			case ',':
				s.i++
				continue
			case ']':
				s.i++
			default:
				return nil, false, s.unexpected()
			}
			break
		}
	case f == formJSON || f == formAuto && c != '{':
		p, err := item(s)
		if err != nil {
			return nil, false, err
		}
		items, single = []T{p}, true
	default: // NDJSON, or objects separated by whitespace on NATS
		if f == formAuto {
			// One object alone is a single item whose errors carry no
			// index, exactly as over HTTP.
			p, err := item(s)
			if err != nil {
				// Index the error only if another object follows.
				probe := &scanner{b: body}
				if probe.skip() == nil && probe.peek() == '{' {
					err = prefixed(index(0), err)
				}
				return nil, false, err
			}
			items = append(items, p)
			if s.peek() != '{' {
				single = true
				break
			}
		}
		for i := len(items); !s.atEnd(); i++ {
			if i == maxBatch {
				return nil, false, tooMany(maxBatch, noun)
			}
			p, err := item(s)
			if err != nil {
				return nil, false, prefixed(index(i), err)
			}
			items = append(items, p)
		}
		return items, false, nil
	}
	if !s.atEnd() {
		return nil, false, vigil.Invalid("", "malformed JSON: unexpected data after the value at byte %d", s.i)
	}
	return items, single, nil
}

func tooMany(limit int, noun string) error {
	return fmt.Errorf("batch has more than %d %ss: %w", limit, noun, vigil.ErrTooLarge)
}

// decodeAlert reads one ManualAlert object from body strictly.
func decodeAlert(body []byte) (vigil.ManualAlert, error) {
	var m vigil.ManualAlert
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 {
		return m, vigil.Invalid("", "empty body: want a JSON alert")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var w wireAlert
	if err := d.Decode(&w); err != nil {
		return m, decodeError(err)
	}
	if err := trailing(body, d); err != nil {
		return m, err
	}
	o, err := decodeOwner(w.Owner)
	if err != nil {
		return m, err
	}
	return vigil.ManualAlert{Service: w.Service, Title: w.Title, Message: w.Message, Level: w.Level, Owner: o}, nil
}

// decodeCancel reads the vigil.in.cancel body {"service": "..."} strictly.
func decodeCancel(body []byte) (string, error) {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 {
		return "", vigil.Invalid("", `empty body: want {"service": "..."}`)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var w struct {
		Service string `json:"service"`
	}
	if err := d.Decode(&w); err != nil {
		return "", decodeError(err)
	}
	if err := trailing(body, d); err != nil {
		return "", err
	}
	return w.Service, nil
}

// trailing fails when anything but whitespace follows the value d read.
func trailing(body []byte, d *json.Decoder) error {
	off := d.InputOffset()
	if len(bytes.TrimLeft(body[off:], " \t\r\n")) != 0 {
		return vigil.Invalid("", "malformed JSON: unexpected data after the value at byte %d", off)
	}
	return nil
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

func prefixed(prefix string, err error) error {
	if prefix == "" {
		return err
	}
	var fe *vigil.FieldError
	if errors.As(err, &fe) && fe.Field == "" {
		return &vigil.FieldError{Field: prefix, Msg: fe.Msg}
	}
	return vigil.PrefixField(prefix, err)
}

// decodeError turns an encoding/json error into a *vigil.FieldError naming
// the field when the error knows it.
func decodeError(err error) error {
	var fe *vigil.FieldError
	if errors.As(err, &fe) {
		return fe
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return vigil.Invalid("", "must be a JSON object, got %s", te.Value)
		}
		return vigil.Invalid(te.Field, "must be a %s, got %s", jsonType(te.Type.Kind().String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return vigil.Invalid("", "malformed JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return vigil.Invalid("", "malformed JSON: unexpected end of input")
	}
	// encoding/json reports unknown fields only by message.
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(rest); err == nil {
			return vigil.Invalid(name, "unknown field")
		}
	}
	return vigil.Invalid("", "malformed JSON: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "struct", "map":
		return "JSON object"
	case "slice", "array":
		return "JSON array"
	case "bool":
		return "boolean"
	}
	return "number"
}
