package vigil_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
)

func TestEventValidate(t *testing.T) {
	ok := func() vigil.Event {
		return vigil.Event{Service: "db.backup", Level: vigil.LevelError, Message: "disk full", Attrs: map[string]string{"disk": "/var"}}
	}
	many := map[string]string{}
	for i := range vigil.MaxAttrs + 1 {
		many[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name  string
		edit  func(*vigil.Event)
		field string // "" for valid
	}{
		{"valid", func(*vigil.Event) {}, ""},
		{"hostile strings", func(e *vigil.Event) {
			e.Service = `"quoted; name"`
			e.Message = "\"leading quote; semi\ncolon\r\n\t\x00 ✓ \u2028"
		}, ""},
		{"client time", func(e *vigil.Event) { e.At = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)) }, ""},
		{"max level", func(e *vigil.Event) { e.Level = vigil.MaxEventLevel }, ""},
		{"no service", func(e *vigil.Event) { e.Service = "" }, "service"},
		{"no message", func(e *vigil.Event) { e.Message = "" }, "message"},
		{"long message", func(e *vigil.Event) { e.Message = strings.Repeat("x", vigil.MaxMessageLen+1) }, "message"},
		{"bad utf-8", func(e *vigil.Event) { e.Message = "a\xffb" }, "message"},
		{"negative level", func(e *vigil.Event) { e.Level = -1 }, "level"},
		{"huge level", func(e *vigil.Event) { e.Level = vigil.MaxEventLevel + 1 }, "level"},
		{"year 10000", func(e *vigil.Event) { e.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "at"},
		{"too many attrs", func(e *vigil.Event) { e.Attrs = many }, "attrs"},
		{"empty attr key", func(e *vigil.Event) { e.Attrs = map[string]string{"": "v"} }, "attrs"},
		{"long attr key", func(e *vigil.Event) { e.Attrs = map[string]string{strings.Repeat("k", vigil.MaxAttrKeyLen+1): "v"} }, "attrs"},
		{"long attr value", func(e *vigil.Event) { e.Attrs = map[string]string{"k": strings.Repeat("v", vigil.MaxAttrValueLen+1)} }, "attrs.k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok()
			tt.edit(&e)
			err := e.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *vigil.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, vigil.ErrInvalid) {
				t.Fatalf("Validate() = %v, want a FieldError for %q", err, tt.field)
			}
		})
	}
}

func TestEventJSON(t *testing.T) {
	in := `{"service":"s","level":"warning","message":"m","at":"2026-01-02T03:04:05.000000006+01:00","attrs":{"k":"v"}}`
	var e vigil.Event
	if err := json.Unmarshal([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	want := vigil.Event{
		Service: "s", Level: vigil.LevelWarning, Message: "m",
		At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)), Attrs: map[string]string{"k": "v"},
	}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("Unmarshal (-want +got):\n%s", diff)
	}
	b, err := json.Marshal(vigil.Event{Service: "s", Level: 3, Message: "m", Seq: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"service":"s","level":3,"message":"m","seq":9}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}
