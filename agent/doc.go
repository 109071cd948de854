// Package agent will be vigil's host agent: a small program that runs on each
// monitored host, sends that host's own heartbeat and checks (disk, load,
// processes) as pulses, and never links the NATS server or the notifier's
// senders. It has its own binary beside cmd/vigil; this package is empty
// until the agent issue builds it.
package agent
