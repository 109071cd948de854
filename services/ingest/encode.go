package ingest

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
)

// appendRecord appends the JSON of rec to b, byte for byte what
// json.Marshal(rec) writes (field order, omitempty, HTML-safe escaping),
// without reflection: it is on the path of every pulse. TestAppendRecord
// compares the two and fails when vigil.Record or vigil.Pulse gains a field.
func appendRecord(b []byte, rec *vigil.Record) []byte {
	b = append(b, `{"op":`...)
	b = appendString(b, string(rec.Op))
	b = append(b, `,"service":`...)
	b = appendString(b, rec.Service)
	b = append(b, `,"next_in":`...)
	b = appendSeconds(b, rec.NextIn)
	if rec.Grace != nil {
		b = append(b, `,"grace":`...)
		b = appendSeconds(b, *rec.Grace)
	}
	if o := rec.Owner; o != nil {
		b = append(b, `,"owner":{"type":`...)
		b = appendString(b, o.Type)
		b = append(b, `,"target":`...)
		b = appendString(b, o.Target)
		b = append(b, '}')
	}
	if rec.Host != "" {
		b = append(b, `,"host":`...)
		b = appendString(b, rec.Host)
	}
	if rec.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, rec.Message)
	}
	if rec.Origin != "" {
		b = append(b, `,"origin":`...)
		b = appendString(b, rec.Origin)
	}
	b = append(b, `,"at":`...)
	b = appendTime(b, rec.At)
	if !rec.CancelledAt.IsZero() {
		b = append(b, `,"cancelled_at":`...)
		b = appendTime(b, rec.CancelledAt)
	}
	if rec.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, rec.ID)
	}
	if rec.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, rec.Seq, 10)
	}
	return append(b, '}')
}

// appendSeconds writes s as vigil.Seconds.MarshalJSON does.
func appendSeconds(b []byte, s vigil.Seconds) []byte {
	return strconv.AppendFloat(b, s.D().Seconds(), 'f', -1, 64)
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); the times here are the server's clock, always in range.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does: short
// escapes for \b \f \n \r \t " \, \u00XX for other control characters, <, >
// and &, \u2028 and \u2029, and U+FFFD for invalid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
