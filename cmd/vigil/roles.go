package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// role is what the composition needs of a role package's *Role (the role
// contract: see any package under services/).
type role interface {
	Routes(rt chi.Router)
	Run(ctx context.Context) error
}

// readier is implemented by roles that can be alive but not yet ready, such
// as a watchdog still catching up on the pulse bucket.
type readier interface {
	Ready(ctx context.Context) error
}

// deps are the role-independent parts of each role package's Deps.
type deps struct {
	Conn    *nats.Conn
	Assets  *bus.Assets
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// allRoles lists every role in the order vigil all starts them: the readers
// of the buckets first, intake last, so the first pulse finds them running.
func allRoles() []string { return []string{"watchdog", "notifier", "api", "ingest"} }

// serverRoles returns the roles server command cmd runs.
func serverRoles(cmd string) ([]string, bool) {
	if cmd == "all" {
		return allRoles(), true
	}
	for _, r := range allRoles() {
		if r == cmd {
			return []string{r}, true
		}
	}
	return nil, false
}

// newRole builds the role called name from cfg: adding a role to vigil is a
// case here, its flags in bind, and its name in allRoles.
func newRole(name string, cfg Config, d deps) (role, error) {
	switch name {
	case "ingest":
		return ingest.New(cfg.ingest(), ingest.Deps{Conn: d.Conn, Assets: d.Assets, Log: d.Log, Metrics: d.Metrics})
	case "watchdog":
		return watchdog.New(cfg.watchdog(), watchdog.Deps{Conn: d.Conn, Assets: d.Assets, Log: d.Log, Metrics: d.Metrics})
	case "notifier":
		nc, err := cfg.notifier()
		if err != nil {
			return nil, err
		}
		return notifier.New(nc, notifier.Deps{Conn: d.Conn, Assets: d.Assets, Log: d.Log, Metrics: d.Metrics})
	case "api":
		return api.New(cfg.api(), api.Deps{Conn: d.Conn, Assets: d.Assets, Log: d.Log, Metrics: d.Metrics})
	}
	return nil, fmt.Errorf("unknown role %q", name)
}
