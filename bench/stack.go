package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// stack is vigil's roles composed as `vigil all` composes them (each role
// with its own in-process connection to an embedded JetStream, their
// routes on one router) with the NATS client port and the HTTP server on
// loopback.
type stack struct {
	srv     *bus.Embedded
	assets  *bus.Assets // on a connection of the bench's own
	url     string      // http://127.0.0.1:port
	natsURL string
	roles   map[string]any

	conns  []*nats.Conn
	http   *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	once   sync.Once
	err    error
}

// stackConfig says which roles run; zero means none (the bus alone).
type stackConfig struct {
	ingest, watchdog, api bool
	notifier              *notifier.Config
}

func allRoles(n *notifier.Config) stackConfig {
	return stackConfig{ingest: true, watchdog: true, api: true, notifier: n}
}

var quiet = slog.New(slog.DiscardHandler)

// startStack starts the embedded server with its store under dir, the
// roles cfg names, and the HTTP server when a role has routes. Stop ends
// everything.
func startStack(ctx context.Context, dir string, cfg stackConfig) (*stack, error) {
	e, err := bus.StartEmbedded(bus.ServerConfig{Name: "bench", DataDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"}, quiet)
	if err != nil {
		return nil, err
	}
	s := &stack{srv: e, natsURL: e.ClientURL(), roles: map[string]any{}}
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	fail := func(err error) (*stack, error) {
		_ = s.stop()
		return nil, err
	}
	if s.assets, err = s.provision(ctx, "bench"); err != nil {
		return fail(err)
	}
	rt := chi.NewRouter()
	routes := false
	type runner interface {
		Routes(chi.Router)
		Run(context.Context) error
	}
	add := func(name string, mk func(bus.Deps) (runner, error)) error {
		a, err := s.provision(ctx, name)
		if err != nil {
			return err
		}
		r, err := mk(bus.Deps{Conn: s.conns[len(s.conns)-1], Assets: a, Log: quiet, Metrics: prometheus.NewRegistry()})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.Routes(rt)
		routes = true
		s.roles[name] = r
		s.wg.Go(func() {
			if err := r.Run(rctx); err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
				s.mu.Unlock()
			}
		})
		return nil
	}
	// The order of vigil all: readers of the buckets first, intake last.
	if cfg.watchdog {
		if err := add("watchdog", func(d bus.Deps) (runner, error) {
			c := watchdog.DefaultConfig()
			c.Instance = "bench"
			return watchdog.New(c, d)
		}); err != nil {
			return fail(err)
		}
	}
	if cfg.notifier != nil {
		if err := add("notifier", func(d bus.Deps) (runner, error) { return notifier.New(*cfg.notifier, d) }); err != nil {
			return fail(err)
		}
	}
	if cfg.api {
		if err := add("api", func(d bus.Deps) (runner, error) { return api.New(api.DefaultConfig(), d) }); err != nil {
			return fail(err)
		}
	}
	if cfg.ingest {
		if err := add("ingest", func(d bus.Deps) (runner, error) { return ingest.New(ingest.DefaultConfig(), d) }); err != nil {
			return fail(err)
		}
	}
	if routes {
		l, err := listen(ctx)
		if err != nil {
			return fail(err)
		}
		s.http = &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
		s.url = "http://" + l.Addr().String()
		s.wg.Go(func() { _ = s.http.Serve(l) })
	}
	return s, nil
}

// provision opens an in-process connection named name and provisions the
// bus contract (one replica) on it.
func (s *stack) provision(ctx context.Context, name string) (*bus.Assets, error) {
	nc, err := s.srv.Connect("bench-" + name)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	js, err := bus.NewJetStream(nc)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := bus.Provision(pctx, js, bus.Config{Replicas: 1})
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	return a, nil
}

// tcpConn opens a client connection over the loopback client port, as an
// outside publisher would.
func (s *stack) tcpConn() (*nats.Conn, error) {
	nc, err := nats.Connect(s.natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

// stop ends the HTTP server and the roles, closes the connections and
// shuts the server down; it returns the roles' errors. It is safe to call
// twice.
func (s *stack) stop() error {
	s.once.Do(func() { s.err = s.shutdown() })
	return s.err
}

func (s *stack) shutdown() error {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
	}
	s.cancel()
	s.wg.Wait()
	for _, nc := range s.conns {
		nc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// waitOK polls GET url every 20 ms until it answers 200 or timeout passes
// (a list answers 503 while its role catches up).
func waitOK(ctx context.Context, c *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		code, err := get(ctx, c, url)
		if err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: not 200 within %v (last %d): %w", url, timeout, code, errors.Join(err, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listen opens a TCP listener on a free loopback port.
func listen(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", "127.0.0.1:0")
}
