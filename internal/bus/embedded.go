package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ServerConfig configures the embedded nats-server of the single-process
// default (vigil all without --nats-url).
type ServerConfig struct {
	// Name is the server name; it must be unique within a cluster.
	Name string
	// DataDir is where JetStream keeps its file store.
	DataDir string
	// Listen is the host:port of the NATS client port, so the nats CLI and
	// direct publishers can connect. Port 0 picks a free port. Empty disables
	// the client port; roles in the same process connect in-process anyway.
	Listen string
	// ConfigFile is an optional nats-server configuration file (accounts,
	// TLS, clustering). Name, DataDir and Listen override what it says.
	ConfigFile string
	// SyncAlways makes JetStream fsync every write before acknowledging it,
	// which survives power loss at about a tenth of the throughput. Without
	// it an acknowledged write is in the OS page cache: it survives kill -9 of
	// vigil, not a power cut within the sync interval (2 min).
	SyncAlways bool
	// MaxStore caps the JetStream file store, in bytes; 0 means no cap
	// beyond the disk.
	MaxStore int64
	// ReadyTimeout bounds how long Start waits for the server.
	ReadyTimeout time.Duration
	// Identities makes the server enforce least-privilege identities: each
	// role connects in-process (ConnectRole) as its own nkey user, made up
	// at start and allowed in-process connections only, with
	// natsconn.RolePermissions; the client port then accepts only the users
	// of ConfigFile (agents, operators). Without it the server has no auth
	// unless ConfigFile sets some.
	Identities bool
}

// Embedded is a nats-server running inside this process with JetStream on.
type Embedded struct {
	srv *server.Server
	// roles holds the in-memory nkey of each role with ServerConfig.Identities.
	roles map[string]nkeys.KeyPair
}

// StartEmbedded starts a JetStream-enabled nats-server in this process and
// waits until it accepts connections and JetStream is enabled. log receives
// the server's own log lines. Errors name the step that failed (options,
// config file, listen address, readiness).
func StartEmbedded(cfg ServerConfig, log *slog.Logger) (*Embedded, error) {
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		o, err := server.ProcessConfigFile(cfg.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("nats config %s: %w", cfg.ConfigFile, err)
		}
		opts = o
	}
	if cfg.Name != "" {
		opts.ServerName = cfg.Name // a cluster config file names its node itself
	}
	opts.JetStream = true
	opts.StoreDir = cfg.DataDir
	opts.NoSigs = true
	opts.SyncAlways = cfg.SyncAlways
	if cfg.MaxStore > 0 {
		opts.JetStreamMaxStore = cfg.MaxStore
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("nats listen address %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	var roles map[string]nkeys.KeyPair
	if cfg.Identities {
		var err error
		if roles, err = addRoleUsers(opts); err != nil {
			return nil, err
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	srv.SetLoggerV2(&serverLog{log: log}, false, false, false)
	srv.Start()
	timeout := cfg.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server not ready after %v: %w", timeout, errors.New("timeout"))
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errors.New("nats server started without JetStream (check the store dir)")
	}
	return &Embedded{srv: srv, roles: roles}, nil
}

// Connect opens an in-process connection (no TCP) to the embedded server.
// Roles in the same process each get their own connection.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
}

// ClientURL returns the nats:// URL of the client port, or "" when it is off.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Healthy reports whether the server and its JetStream are serving.
func (e *Embedded) Healthy() error {
	if st := e.srv.Healthz(&server.HealthzOptions{JSEnabledOnly: true}); st.Error != "" {
		return fmt.Errorf("nats server: %s", st.Error)
	}
	return nil
}

// Shutdown stops the server and waits until it has flushed its stores, or
// until ctx ends.
func (e *Embedded) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// serverLog adapts slog to nats-server's Logger.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Noticef(f string, v ...any) { l.log.Info(fmt.Sprintf(f, v...)) }
func (l *serverLog) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l *serverLog) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l *serverLog) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l *serverLog) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l *serverLog) Tracef(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
