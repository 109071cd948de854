// Command vigil-agent is vigil's host agent. It runs on each monitored
// host: every interval it sends the host's stats (System Monitor's cpu,
// memory, disks, processes and network, plus load, uptime and boot time)
// over NATS or HTTP, pulses the host's own service so a dead host raises a
// down alert, raises alerts when threshold rules are crossed, and buffers on
// disk what the server could not take. vigil-agent toast is the desktop
// client of vigil's toast channel.
//
//	vigil-agent cpu|memory|disks|processes|network [--json]
//	vigil-agent generate-system-id [--new]
//	vigil-agent run | check | toast
//	vigil-agent install|uninstall [--toast] [--user]
//	vigil-agent version | help [command]
//
// See docs/agent.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
