//go:build !windows && !darwin

// Package desktoptest runs a real D-Bus session bus (dbus-daemon, started by
// the test) with a notification server that owns
// org.freedesktop.Notifications and records every Notify call, as a
// desktop's notification daemon receives it.
package desktoptest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

// SessionBus starts dbus-daemon with a session configuration listening in
// a temporary directory, and returns its address; the daemon is killed
// when the test ends. The test is skipped when dbus-daemon is missing.
func SessionBus(tb testing.TB) string {
	tb.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		tb.Skip("dbus-daemon is not installed (Debian: apt-get install dbus-daemon)")
	}
	dir := tb.TempDir()
	conf := filepath.Join(dir, "session.conf")
	if err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+filepath.Join(dir, "bus")+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), daemon, "--config-file="+conf, "--print-address", "--nofork")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// Call is one recorded Notify call.
type Call struct {
	App, Icon, Summary, Body string
	Replaces                 uint32
	Actions                  []string
	Urgency                  byte
	Timeout                  int32
}

// Server is a notification server on the bus.
type Server struct {
	// Calls receives every Notify call.
	Calls chan Call
	caps  []string
}

// Notify records a call (org.freedesktop.Notifications.Notify).
func (s *Server) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	c := Call{App: app, Replaces: replaces, Icon: icon, Summary: summary, Body: body, Actions: actions, Timeout: timeout}
	if v, ok := hints["urgency"]; ok {
		u, ok := v.Value().(byte)
		if !ok {
			return 0, dbus.MakeFailedError(fmt.Errorf("urgency is %T, want a byte", v.Value()))
		}
		c.Urgency = u
	}
	s.Calls <- c
	return 1, nil
}

// GetCapabilities answers the server's capabilities.
func (s *Server) GetCapabilities() ([]string, *dbus.Error) { return s.caps, nil }

// Serve connects to the bus at addr, exports a Server with capabilities
// caps at /org/freedesktop/Notifications and takes the name
// org.freedesktop.Notifications, until the test ends.
func Serve(tb testing.TB, addr string, caps ...string) *Server {
	tb.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	s := &Server{caps: caps, Calls: make(chan Call, 100)}
	if err := conn.Export(s, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		tb.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		tb.Fatalf("RequestName = %v, %v", reply, err)
	}
	return s
}
