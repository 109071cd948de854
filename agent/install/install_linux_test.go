package install_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/agent/install"
)

// A per-user systemd unit, written by kardianos/service's real template
// into a temporary HOME. systemctl is replaced by a script on PATH that
// records its arguments: nothing is installed on the machine.
func TestSystemdUserUnit(t *testing.T) {
	home, bin := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	calls := filepath.Join(bin, "calls")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	o := install.Options{
		Name: "vigil-agent", Description: "vigil host agent",
		Executable: "/opt/vigil/vigil-agent", Args: []string{"run", "--config", "/etc/vigil agent/agent.yaml"},
		User: true, System: "linux-systemd",
	}
	if err := install.Install(o); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join(home, ".config/systemd/user/vigil-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Description=vigil host agent",
		`ExecStart=/opt/vigil/vigil-agent "run" "--config" "/etc/vigil agent/agent.yaml"`,
		"After=network-online.target",
		"Wants=network-online.target",
		"Restart=always",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if err := install.Install(o); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Install = %v, want already exists", err)
	}
	if err := install.Uninstall(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, ".config/systemd/user/vigil-agent.service")); !os.IsNotExist(err) {
		t.Errorf("unit still there after Uninstall: %v", err)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"enable --user vigil-agent.service", "daemon-reload --user", "disable --user vigil-agent.service"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("systemctl calls %q lack %q", got, want)
		}
	}
	if p := install.Platform(install.Options{Name: "x", System: "windows-service"}); p != "none" {
		t.Errorf("Platform of an unavailable system = %q, want none", p)
	}
	if err := install.Install(install.Options{Name: "x", System: "windows-service"}); err == nil {
		t.Error("Install with an unavailable system = nil error")
	}
}
