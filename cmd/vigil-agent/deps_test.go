package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent runs on many hosts: it must not link the NATS server, the
// notifier's mail code, Prometheus or vigil's server roles, on any OS it
// is built for. Of vigil's internal packages it may link natsconn (nats.go
// options) and flagconf (flags, environment and YAML) only.
var allowedInternal = map[string]bool{
	"github.com/vigil-monitor/vigil/internal/natsconn": true,
	"github.com/vigil-monitor/vigil/internal/flagconf": true,
}

func TestAgentStaysSmall(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	forbidden := []string{
		"github.com/nats-io/nats-server",
		"github.com/wneessen/go-mail",
		"github.com/emersion/go-smtp",
		"github.com/prometheus/client_golang",
		"github.com/vigil-monitor/vigil/services/",
		"github.com/vigil-monitor/vigil/internal/",
	}
	for _, goos := range []string{"linux", "windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), goTool, "list", "-deps", ".")
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOFLAGS=-mod=mod")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps: %v\n%s", err, out)
			}
			for _, pkg := range strings.Fields(string(out)) {
				if allowedInternal[pkg] {
					continue
				}
				for _, f := range forbidden {
					if strings.HasPrefix(pkg, f) {
						t.Errorf("vigil-agent (GOOS=%s) links %s", goos, pkg)
					}
				}
			}
		})
	}
}
