package ingest

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
)

// scanner is a strict, allocation-light JSON reader for the pulse shape, the
// hot path of ingest. encoding/json would scan every body twice, reach the
// fields by reflection, and report neither the field of a bad next_in nor
// the path of an unknown owner field; this reads each byte once and names
// the field of every error. It accepts exactly RFC 8259 JSON. Keys match
// case-insensitively as with encoding/json; invalid UTF-8 in strings is kept
// as is, so validation rejects it instead of silently replacing it.
type scanner struct {
	b []byte
	i int
}

// syntaxError is a malformed-JSON error at the scanner's position.
func (s *scanner) syntaxError(format string, args ...any) error {
	return vigil.Invalid("", "malformed JSON at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// atEnd reports whether only whitespace is left: peek's 0 cannot tell the
// end from a NUL byte ("{...}\x00junk" must be trailing data, not the end).
func (s *scanner) atEnd() bool {
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) unexpected() error {
	if s.i >= len(s.b) {
		return vigil.Invalid("", "malformed JSON: unexpected end of input")
	}
	return s.syntaxError("unexpected %q", s.b[s.i])
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.unexpected()
	}
	s.i++
	return nil
}

// object reads an object, calling field for each key with the scanner at
// its value; field must consume the value.
func (s *scanner) object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	var kbuf [32]byte
	for {
		if s.peek() != '"' {
			return s.unexpected()
		}
		key, err := s.str(kbuf[:0])
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.unexpected()
		}
	}
}

// str reads a string literal at s.i, appending its decoded bytes to buf.
func (s *scanner) str(buf []byte) ([]byte, error) {
	s.i++ // opening quote
	for {
		start := s.i
		for s.i < len(s.b) {
			c := s.b[s.i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			s.i++
		}
		buf = append(buf, s.b[start:s.i]...)
		if s.i == len(s.b) {
			return nil, s.unexpected()
		}
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return buf, nil
		case c < 0x20:
			return nil, s.syntaxError("control character %q in a string", c)
		}
		// A backslash escape.
		if s.i+1 >= len(s.b) {
			s.i = len(s.b)
			return nil, s.unexpected()
		}
		s.i++
		switch e := s.b[s.i]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := s.hex4(s.i + 1)
			if !ok {
				return nil, s.syntaxError("bad \\u escape")
			}
			s.i += 4
			if utf16.IsSurrogate(r) {
				// A lone surrogate becomes U+FFFD, as in encoding/json.
				r2, ok := s.hex4(s.i + 3)
				if ok && s.i+2 < len(s.b) && s.b[s.i+1] == '\\' && s.b[s.i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						s.i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, s.syntaxError("bad escape \\%c", e)
		}
		s.i++
	}
}

func (s *scanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number literal per RFC 8259 and returns its text.
func (s *scanner) number() ([]byte, error) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, s.unexpected()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, s.unexpected()
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, s.unexpected()
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// literal consumes word (true, false, null) at s.i.
func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.unexpected()
	}
	s.i += len(word)
	return nil
}

// skip consumes any JSON value, checking its syntax.
func (s *scanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.unexpected()
			}
		}
	case c == '"':
		_, err := s.str(nil)
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.number()
		return err
	}
	return s.unexpected()
}

// kind names the JSON type of the value at s.i, for error messages.
func (s *scanner) kind() string {
	switch c := s.peek(); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	}
	return "no value"
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && s.literal("null") == nil {
		return true
	}
	return false
}

// stringField reads a string value into *dst; null leaves it unchanged, as
// encoding/json does.
func (s *scanner) stringField(name string, dst *string) error {
	if s.null() {
		return nil
	}
	if s.peek() != '"' {
		if k := s.kind(); k != "no value" {
			return vigil.Invalid(name, "must be a string, got %s", k)
		}
		return s.unexpected()
	}
	b, err := s.str(nil)
	if err != nil {
		return err
	}
	*dst = string(b)
	return nil
}

// seconds reads a number of seconds like vigil.Seconds.UnmarshalJSON does:
// a JSON number (null is zero), no strings, within ±MaxInt64 nanoseconds.
func (s *scanner) seconds(name string) (vigil.Seconds, error) {
	if s.null() {
		return 0, nil
	}
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		if k := s.kind(); k != "no value" {
			return 0, vigil.Invalid(name, "want a number of seconds, got %s", k)
		}
		return 0, s.unexpected()
	}
	lit, err := s.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return 0, vigil.Invalid(name, "%s seconds is out of range", lit)
	}
	return vigil.Seconds(time.Duration(f * float64(time.Second))), nil
}

// pulse reads one pulse object.
func (s *scanner) pulse() (vigil.Pulse, error) {
	var p vigil.Pulse
	if c := s.peek(); c != '{' {
		if k := s.kind(); k != "no value" {
			return p, vigil.Invalid("", "must be a JSON object, got %s", k)
		}
		return p, s.unexpected()
	}
	err := s.object(func(key []byte) error {
		switch {
		case fold(key, "service"):
			return s.stringField("service", &p.Service)
		case fold(key, "next_in"):
			v, err := s.seconds("next_in")
			p.NextIn = v
			return err
		case fold(key, "grace"):
			if s.null() {
				p.Grace = nil
				return nil
			}
			v, err := s.seconds("grace")
			p.Grace = &v
			return err
		case fold(key, "owner"):
			o, err := s.owner(p.Owner)
			p.Owner = o
			return err
		case fold(key, "host"):
			return s.stringField("host", &p.Host)
		case fold(key, "message"):
			return s.stringField("message", &p.Message)
		}
		return vigil.Invalid(string(key), "unknown field")
	})
	return p, err
}

// owner reads an owner object into o (a repeated "owner" key merges into the
// first, as with encoding/json), or a new one when o is nil.
func (s *scanner) owner(o *vigil.Owner) (*vigil.Owner, error) {
	if s.null() {
		return nil, nil
	}
	if s.peek() != '{' {
		if k := s.kind(); k != "no value" {
			return nil, vigil.Invalid("owner", "must be a JSON object, got %s", k)
		}
		return nil, s.unexpected()
	}
	if o == nil {
		o = new(vigil.Owner)
	}
	err := s.object(func(key []byte) error {
		switch {
		case fold(key, "type"):
			return s.stringField("owner.type", &o.Type)
		case fold(key, "target"):
			return s.stringField("owner.target", &o.Target)
		}
		return vigil.Invalid("owner."+string(key), "unknown field")
	})
	return o, err
}

// fold reports whether key equals name (lowercase ASCII) ignoring ASCII case.
func fold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
