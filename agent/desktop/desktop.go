// Package desktop shows a native notification on this machine: through
// the freedesktop notification service over D-Bus on Linux and the BSDs
// (org.freedesktop.Notifications.Notify, github.com/godbus/dbus/v5), with
// osascript's "display notification" on macOS, and with
// github.com/go-toast/toast on Windows (behind the windows build tag: it
// does not build elsewhere).
//
// What is shown comes from the server and may be written by anyone who may
// raise an alert, so each backend passes it so that it cannot run as code:
// as D-Bus arguments, as osascript argv items, and, for go-toast, whose
// PowerShell script embeds the text in a double-quoted here-string,
// escaped for PowerShell and XML (PowerShellText).
package desktop

import (
	"context"
	"net/url"
	"strings"

	"github.com/vigil-monitor/vigil"
)

// Note is one notification: a title, a body, vigil's level (0 debug … 4
// critical) and an optional http(s) link.
type Note struct {
	Title string
	Body  string
	Level vigil.Level
	URL   string
}

// Notifier shows notes.
type Notifier interface {
	Notify(ctx context.Context, n Note) error
	Close() error
}

// AppName is the application name the notifications carry.
const AppName = "vigil"

// Urgency maps a level to the freedesktop urgency byte: 0 low for debug, 1
// normal for info and warning, 2 critical for error and above.
func Urgency(l vigil.Level) byte {
	switch {
	case l >= vigil.LevelError:
		return 2
	case l >= vigil.LevelInfo:
		return 1
	}
	return 0
}

// SafeURL returns u when it is an absolute http or https URL, else "": a
// click must not open another protocol's handler.
func SafeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return p.String()
}

// clean drops control characters other than newline and tab.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= ' ' && r != 0x7f && (r < 0x80 || r > 0x9f)) {
			return r
		}
		return ' '
	}, s)
}

// MarkupEscape escapes &, < and > for a notification server that reads
// the body as markup (capability "body-markup" of the freedesktop
// Desktop Notifications Specification 1.2).
func MarkupEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// PowerShellText makes s safe inside go-toast's script: in a PowerShell
// double-quoted here-string ($ and backtick expand, a line starting with
// "@ ends it; PowerShell also takes the typographic quotes “ ” „ for ")
// and inside an XML CDATA section (]]> ends it). Each of $ ` and the four
// double quotes gets a backtick before it, ]]> is split across two CDATA
// sections, and control characters become spaces.
func PowerShellText(s string) string {
	var b strings.Builder
	for _, r := range clean(s) {
		switch r {
		case '$', '`', '"', '\u201c', '\u201d', '\u201e':
			b.WriteRune('`')
		}
		b.WriteRune(r)
	}
	return strings.ReplaceAll(b.String(), "]]>", "]]]]><![CDATA[>")
}

// PowerShellAttr makes s safe as an XML attribute value inside go-toast's
// here-string: XML-escaped, then escaped like PowerShellText.
func PowerShellAttr(s string) string {
	x := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(clean(s))
	return PowerShellText(x)
}

// OsascriptArgs returns the osascript arguments that show title and body:
// the script reads them from argv, so no text is ever parsed as
// AppleScript.
func OsascriptArgs(title, body string) []string {
	return []string{
		"-e", "on run argv",
		"-e", "display notification (item 2 of argv) with title (item 1 of argv)",
		"-e", "end run",
		clean(title), clean(body),
	}
}

// withURL appends the link to the body.
func withURL(n Note) string {
	if u := SafeURL(n.URL); u != "" {
		if n.Body == "" {
			return u
		}
		return n.Body + "\n" + u
	}
	return n.Body
}
