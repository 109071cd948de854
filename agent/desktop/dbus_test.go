//go:build !windows && !darwin

package desktop_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/desktop"
	"github.com/vigil-monitor/vigil/agent/desktop/desktoptest"
)

func TestDBusNotify(t *testing.T) {
	addr := desktoptest.SessionBus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	tests := []struct {
		name string
		caps []string
		note desktop.Note
		want desktoptest.Call
	}{
		{
			"critical with a link",
			[]string{"body"},
			desktop.Note{Title: "backup is down", Body: "no pulse since 12:00 <b>", Level: vigil.LevelCritical, URL: "https://vigil.example.com/services/backup"},
			desktoptest.Call{App: "vigil", Summary: "backup is down", Body: "no pulse since 12:00 <b>\nhttps://vigil.example.com/services/backup", Urgency: 2, Timeout: -1, Actions: []string{}},
		},
		{
			"markup server gets escaped text",
			[]string{"body", "body-markup"},
			desktop.Note{Title: "a & b", Body: "x < y & <script>", Level: vigil.LevelWarning},
			desktoptest.Call{App: "vigil", Summary: "a & b", Body: "x &lt; y &amp; &lt;script&gt;", Urgency: 1, Timeout: -1, Actions: []string{}},
		},
		{
			"debug is low, other protocols and control characters dropped", nil,
			desktop.Note{Title: "t\x1b[31m", Body: "b", Level: vigil.LevelDebug, URL: "file:///etc/passwd"},
			desktoptest.Call{App: "vigil", Summary: "t [31m", Body: "b", Urgency: 0, Timeout: -1, Actions: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := desktoptest.Serve(t, addr, tt.caps...)
			n, err := desktop.NewDBus()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.Notify(ctx, tt.note); err != nil {
				t.Fatalf("Notify = %v", err)
			}
			select {
			case got := <-srv.Calls:
				if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
					t.Errorf("Notify call\n got %+v\nwant %+v", got, tt.want)
				}
			case <-ctx.Done():
				t.Fatal("the notification server saw no call")
			}
		})
	}
}

// Without a notification server on the bus, Notify fails with the bus's
// error rather than hanging.
func TestDBusNoServer(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", desktoptest.SessionBus(t))
	n, err := desktop.NewDBus()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = n.Notify(context.Background(), desktop.Note{Title: "x"})
	if err == nil || !strings.Contains(err.Error(), "org.freedesktop.Notifications") {
		t.Errorf("Notify without a server = %v, want the bus's ServiceUnknown error", err)
	}
}
