package desktop_test

import (
	"slices"
	"testing"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/desktop"
)

func TestPowerShellText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"backup is down", "backup is down"},
		{"$(Remove-Item C:\\ -Recurse)", "`$(Remove-Item C:\\ -Recurse)"},
		{"cost: $HOME `whoami`", "cost: `$HOME ``whoami``"},
		{"line\n\"@\nIEX evil", "line\n`\"@\nIEX evil"},
		{"smart “@ and ”@ and „@", "smart `“@ and `”@ and `„@"},
		{"end ]]> of cdata", "end ]]]]><![CDATA[> of cdata"},
		{"bell\a and nul\x00", "bell  and nul "},
	}
	for _, tt := range tests {
		if got := desktop.PowerShellText(tt.in); got != tt.want {
			t.Errorf("PowerShellText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := desktop.PowerShellAttr(`https://x/?a=1&b="2"$x`); got != "https://x/?a=1&amp;b=&quot;2&quot;`$x" {
		t.Errorf("PowerShellAttr = %q", got)
	}
}

func TestOsascriptArgs(t *testing.T) {
	title, body := `"); do shell script "rm -rf ~`, "a\\b\"c"
	got := desktop.OsascriptArgs(title, body)
	// The texts are passed as argv items, never inside the script.
	want := []string{"-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)", "-e", "end run", title, body}
	if !slices.Equal(got, want) {
		t.Errorf("OsascriptArgs = %q, want %q", got, want)
	}
}

func TestSafeURLAndUrgency(t *testing.T) {
	for in, want := range map[string]string{
		"https://vigil.example.com/s/1": "https://vigil.example.com/s/1",
		"http://10.0.0.1:8080/":         "http://10.0.0.1:8080/",
		"file:///etc/passwd":            "",
		"javascript:alert(1)":           "",
		"ms-settings:":                  "",
		"/relative":                     "",
	} {
		if got := desktop.SafeURL(in); got != want {
			t.Errorf("SafeURL(%q) = %q, want %q", in, got, want)
		}
	}
	for l, want := range map[vigil.Level]byte{0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 9: 2} {
		if got := desktop.Urgency(l); got != want {
			t.Errorf("Urgency(%d) = %d, want %d", l, got, want)
		}
	}
}
