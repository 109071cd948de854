package bus

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what the composition (cmd/vigil) gives every role: its own NATS
// connection, the provisioned assets (Assets.JS is the JetStream context), a
// logger, a metrics registerer (never the global one), and a clock (nil means
// time.Now). Each role package re-exports it as its own Deps.
type Deps struct {
	Conn    *nats.Conn
	Assets  *Assets
	Log     *slog.Logger
	Metrics prometheus.Registerer
	Now     func() time.Time
}
