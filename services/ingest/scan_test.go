package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
)

// FuzzScannerMatchesEncodingJSON checks that the hand-written pulse scanner
// accepts what a strict encoding/json decode into vigil.Pulse accepts, with
// the same result, and rejects what it rejects. The scanner is deliberately
// stricter in two places, skipped here: invalid UTF-8 (kept so validation
// rejects it, not replaced) and non-ASCII case folding of keys.
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"service":"a","next_in":60}`,
		`{"service":"a b.c","next_in":0.5,"grace":null,"owner":{"type":"mail","target":"a@b.c"},"host":"h","message":"m"}`,
		`{"Service":"x","NEXT_IN":1e3,"grace":-0.0}`,
		`{"service":"\u00e9\ud83d\ude00\ud800x\n\"\\\/","next_in":1}`,
		`{"owner":{"type":"mail"},"owner":{"target":"x"}}`,
		`{"owner":null,"host":null,"next_in":null}`,
		`{"next_in":"60"}`, `{"next_in":1e400}`, `{"next_in":01}`, `{"next_in":1.}`, `{"next_in":-}`,
		`{"service":5}`, `{"x":1}`, `{"owner":{"x":1}}`, `{"owner":"me"}`, `{}`, `{`, `{"a"}`, `{"service":"a",}`,
		`{"service":"a\x01"}`, `{"service":"\q"}`, `{"service":"\u12"}`, ` {"service" : "a" , "next_in" : 2 } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !utf8.Valid(in) {
			return
		}
		var want vigil.Pulse
		d := json.NewDecoder(bytes.NewReader(in))
		d.DisallowUnknownFields()
		wantErr := d.Decode(&want)
		if wantErr == nil && len(bytes.TrimLeft(in[d.InputOffset():], " \t\r\n")) != 0 {
			wantErr = errTrailing
		}
		if wantErr == nil && !bytes.HasPrefix(bytes.TrimLeft(in, " \t\r\n"), []byte("{")) {
			wantErr = errTrailing // null decodes to a zero pulse; the scanner wants an object
		}
		s := &scanner{b: in}
		got, err := s.pulse()
		if err == nil && !s.atEnd() {
			err = errTrailing
		}
		switch {
		case wantErr == nil && err != nil:
			if !asciiKeys(in) {
				return
			}
			t.Fatalf("scanner rejects %q: %v; encoding/json accepts it as %+v", in, err, want)
		case wantErr != nil && err == nil:
			t.Fatalf("scanner accepts %q as %+v; encoding/json rejects it: %v", in, got, wantErr)
		case err == nil:
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("scanner(%q) differs from encoding/json (-json +scanner):\n%s", in, diff)
			}
		}
	})
}

var errTrailing = vigil.Invalid("", "trailing data")

func asciiKeys(in []byte) bool {
	for _, c := range in {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func TestAppendRecord(t *testing.T) {
	g := vigil.Seconds(1500 * time.Millisecond)
	zero := vigil.Seconds(0)
	at := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	tests := []vigil.Record{
		{},
		{Op: vigil.OpPulse, Pulse: vigil.Pulse{Service: "a", NextIn: vigil.Seconds(time.Minute)}, At: at},
		{Op: vigil.OpPulse, Pulse: vigil.Pulse{Service: "a", NextIn: 1, Grace: &zero}, At: at.Truncate(time.Second), ID: "x"},
		{
			Op: vigil.OpCancel,
			Pulse: vigil.Pulse{
				Service: "a.b *> \"q\" \\ <x> & \u2028\u2029 \x00\x01\x1f\b\f\n\r\t é 😀 \xff", NextIn: vigil.Seconds(vigil.MaxNextIn), Grace: &g,
				Owner: &vigil.Owner{Type: "mail", Target: "ops@example.com"}, Host: "h\x7f", Message: "</script>",
			},
			Origin: "watchtower", At: at, CancelledAt: at.Add(time.Hour), ID: "id", Seq: 42,
		},
	}
	for _, rec := range tests {
		want, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &rec); string(got) != string(want) {
			t.Errorf("appendRecord(%+v) =\n%s\nwant (json.Marshal)\n%s", rec, got, want)
		}
	}
	// appendRecord writes these fields by hand; a new one must be added there.
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[vigil.Record](): 7, reflect.TypeFor[vigil.Pulse](): 6, reflect.TypeFor[vigil.Owner](): 2,
	} {
		if typ.NumField() != n {
			t.Errorf("%v has %d fields, appendRecord knows %d: update it", typ, typ.NumField(), n)
		}
	}
}
