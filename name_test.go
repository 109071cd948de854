package vigil_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil"
)

func TestToken(t *testing.T) {
	tests := []struct{ name, want string }{
		{"db-backup", "db-backup"},
		{"DB_backup2", "DB_backup2"},
		{"db.backup", "_ZGIuYmFja3Vw"},
		{"my service", "_bXkgc2VydmljZQ"},
		{"_hidden", "_X2hpZGRlbg"},
		{"*", "_Kg"},
		{">", "_Pg"},
		{"a.*.>", "_YS4qLj4"},
	}
	for _, tt := range tests {
		if got := vigil.Token(tt.name); got != tt.want {
			t.Errorf("Token(%q) = %q, want %q", tt.name, got, tt.want)
		}
		back, err := vigil.NameFromToken(tt.want)
		if err != nil || back != tt.name {
			t.Errorf("NameFromToken(%q) = %q, %v, want %q", tt.want, back, err, tt.name)
		}
	}
}

func TestNameFromTokenRejectsAliases(t *testing.T) {
	// "_ZGI" decodes to "db", which is plain and has only itself as token.
	for _, tok := range []string{"", "_ZGI", "a.b", "_!!", "_", "a b", "a*"} {
		if n, err := vigil.NameFromToken(tok); err == nil {
			t.Errorf("NameFromToken(%q) = %q, want an error", tok, n)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "my service", "db.backup", "Größe ✓", strings.Repeat("x", 256)} {
		if err := vigil.ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 257), "\xff"} {
		if err := vigil.ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", bad)
		}
	}
}

// FuzzToken checks that Token round-trips, never yields subject syntax, and is
// injective (a token decodes to exactly one name).
func FuzzToken(f *testing.F) {
	for _, s := range []string{"a", "my service", "db.backup", "_x", "*", ">", "a b\tc", "Größe ✓", "-", "_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if vigil.ValidateName(name) != nil {
			return
		}
		tok := vigil.Token(name)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") || !utf8.ValidString(tok) {
			t.Fatalf("Token(%q) = %q: not a safe subject token", name, tok)
		}
		back, err := vigil.NameFromToken(tok)
		if err != nil || back != name {
			t.Fatalf("NameFromToken(Token(%q)) = %q, %v", name, back, err)
		}
	})
}
