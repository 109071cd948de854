package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/limit"
	"github.com/vigil-monitor/vigil/internal/natsconn"
	"github.com/vigil-monitor/vigil/openapi"
	"github.com/vigil-monitor/vigil/services/api/web"
)

// app is one running vigil process: an optional embedded NATS server, one
// NATS connection and one role per name, and one HTTP server for every role's
// routes plus /healthz, /readyz and /metrics.
type app struct {
	log     *slog.Logger
	started time.Time
	natsURL string

	ln  net.Listener
	srv *http.Server
	// routes serves the roles' endpoints once they are built; until then
	// every path but the health endpoints answers 503.
	routes atomic.Pointer[http.Handler]
	// provisioned is set once every role is built on provisioned assets;
	// the roles slice is complete from then on.
	provisioned atomic.Bool

	emb   *bus.Embedded
	conns []*conn
	roles []*running
	// legacy are the legacy protocol listeners (nil when off).
	legacy *legacyServers

	cancelRoles context.CancelFunc
	group       errgroup.Group

	done     chan struct{} // closed by finish: ctx ended or a part failed
	doneOnce sync.Once
	err      error // first failure; written before done is closed

	ready    chan struct{} // closed once /readyz first passes
	quit     chan struct{} // closed by Stop, ends the readiness watcher
	watchers sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	stopCtx  func() bool // cancels the context.AfterFunc of startApp
}

// conn is one role's NATS connection; closed is closed with it.
type conn struct {
	name   string
	nc     *nats.Conn
	closed chan struct{}
}

// running is one built role.
type running struct {
	name   string
	role   role
	conn   *conn
	assets *bus.Assets
}

// startApp starts the roles named in roles with cfg and returns once they
// run. The HTTP listener is bound first, so /healthz answers (and /readyz
// says why not ready) while NATS and the streams come up. Without
// cfg.NATS.URL it starts the embedded server. It fails when the listener,
// the server, a connection, provisioning or a role cannot start, or ctx ends
// first; Wait returns once ctx ends or a role fails afterwards.
func startApp(ctx context.Context, cfg Config, roles []string, log *slog.Logger) (*app, error) {
	a := &app{
		log:     log,
		started: time.Now(),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		quit:    make(chan struct{}),
	}
	a.stopCtx = context.AfterFunc(ctx, func() { a.finish(nil) })
	if err := a.start(ctx, cfg, roles); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		return nil, errors.Join(err, a.Stop(sctx))
	}
	return a, nil
}

func (a *app) start(ctx context.Context, cfg Config, roles []string) error {
	if len(roles) == 0 {
		return errors.New("no roles to run")
	}
	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	guard, err := newGuard(cfg, reg, a.log)
	if err != nil {
		return err
	}
	lim, err := newLimiter(cfg, reg)
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	a.ln = ln
	a.srv = &http.Server{
		Handler:           a.handler(reg, guard, lim, cfg.Auth.ProtectMetrics),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	if cfg.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("http tls (--tls-cert, --tls-key): %w", err)
		}
		a.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, a.srv.TLSConfig)
	}
	a.watchers.Go(func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.finish(fmt.Errorf("http server: %w", err))
		}
	})

	if cfg.NATS.URL == "" {
		sc := cfg.server()
		// nats-server only logs a busy port and then times out after 10 s;
		// trying the port first turns that into a clear error at once.
		if sc.Listen != "" {
			l, err := lc.Listen(ctx, "tcp", sc.Listen)
			if err != nil {
				return fmt.Errorf("nats listen (--nats-listen): %w", err)
			}
			_ = l.Close() // only a probe
		}
		emb, err := bus.StartEmbedded(sc, serverLogger(a.log))
		if err != nil {
			return err
		}
		a.emb = emb
		a.natsURL = emb.ClientURL()
	} else {
		a.natsURL = cfg.NATS.URL
	}
	for _, name := range roles {
		c, err := a.connect(cfg, name)
		if err != nil {
			return err
		}
		a.conns = append(a.conns, c)
	}

	assets, err := a.provision(ctx, cfg.bus(), cfg.NATS.Identities)
	if err != nil {
		return err
	}
	rt := chi.NewRouter()
	rt.Use(lim.ByIP) // before the token check, so guessing tokens is limited too
	if guard != nil {
		rt.Use(guard.Handler) // every role's route needs a token
	}
	rt.Use(lim.ByToken)
	rt.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	})
	rt.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	})
	for i, name := range roles {
		r, err := newRole(name, cfg, deps{
			Conn:    a.conns[i].nc,
			Assets:  assets[i],
			Log:     a.log.With("role", name),
			Metrics: reg,
		})
		if err != nil {
			return fmt.Errorf("role %s: %w", name, err)
		}
		r.Routes(rt)
		a.roles = append(a.roles, &running{name: name, role: r, conn: a.conns[i], assets: assets[i]})
	}
	if slices.Contains(roles, "api") { // the web pages read the api role's routes
		if err := mountPages(rt, cfg, guard, a.log); err != nil {
			return err
		}
	}
	var h http.Handler = rt
	a.routes.Store(&h)
	a.provisioned.Store(true)

	// The roles outlive ctx: Stop cancels them only after the HTTP server has
	// finished its requests, so every acknowledged pulse is answered.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancelRoles = cancel
	for _, r := range a.roles {
		a.group.Go(func() error {
			err := r.role.Run(rctx)
			switch {
			case err == nil && rctx.Err() == nil:
				err = errors.New("stopped unexpectedly")
			case errors.Is(err, context.Canceled) && rctx.Err() != nil:
				// Stopped while still starting: a clean stop all the same.
				a.log.Debug("role stopped while starting", "role", r.name, "err", err)
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("role %s: %w", r.name, err)
				a.finish(err)
			}
			return err
		})
	}
	if a.legacy, err = startLegacy(ctx, cfg.Legacy, a.roles, h, lim, a.log, a.finish); err != nil {
		return err
	}
	a.watchers.Go(func() { a.watchReady(roles) })
	return nil
}

// connect opens the NATS connection of role name: in-process to the
// embedded server, or to cfg.NATS.URL with its credentials.
func (a *app) connect(cfg Config, name string) (*conn, error) {
	var (
		nc  *nats.Conn
		err error
	)
	if a.emb != nil {
		nc, err = a.emb.ConnectRole(name)
	} else {
		nc, err = bus.Connect(cfg.conn(name), a.log.With("role", name))
	}
	if err != nil {
		return nil, fmt.Errorf("role %s: %w", name, err)
	}
	c := &conn{name: name, nc: nc, closed: make(chan struct{})}
	nc.SetClosedHandler(func(*nats.Conn) { close(c.closed) })
	if nc.IsClosed() {
		return nil, fmt.Errorf("role %s: nats connection closed at once", name)
	}
	return c, nil
}

// provision runs bus.Provision on every role's connection, so each role gets
// assets bound to its own connection. The first run creates the streams and
// buckets; the others only confirm them. They run one after the other:
// concurrent updates of one stream race inside nats-server (seen with -race).
// With least-privilege identities each role creates only what it owns and
// waits for the rest, so they run at once: one after the other, a role
// would wait for a stream that a later role creates.
func (a *app) provision(ctx context.Context, bc bus.Config, identities bool) ([]*bus.Assets, error) {
	out := make([]*bus.Assets, len(a.conns))
	if identities {
		var g errgroup.Group
		for i, c := range a.conns {
			g.Go(func() error {
				js, err := bus.NewJetStream(c.nc)
				if err != nil {
					return fmt.Errorf("role %s: jetstream: %w", c.name, err)
				}
				rc := bc
				rc.Owner = c.name
				if out[i], err = bus.Provision(ctx, js, rc); err != nil {
					return fmt.Errorf("role %s: %w", c.name, err)
				}
				return nil
			})
		}
		return out, g.Wait()
	}
	for i, c := range a.conns {
		js, err := bus.NewJetStream(c.nc)
		if err != nil {
			return nil, fmt.Errorf("role %s: jetstream: %w", c.name, err)
		}
		if out[i], err = bus.Provision(ctx, js, bc); err != nil {
			return nil, fmt.Errorf("role %s: %w", c.name, err)
		}
	}
	return out, nil
}

// watchReady polls the readiness check until it first passes, logs "vigil
// ready" and closes a.ready; it gives up when the app stops.
func (a *app) watchReady(roles []string) {
	wait := time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := a.check(ctx)
		cancel()
		if err == nil {
			a.log.Info("vigil ready",
				"http_addr", a.HTTPAddr(),
				"nats_url", natsconn.RedactURL(a.natsURL),
				"roles", roles,
				"took", float64(time.Since(a.started).Microseconds())/1000)
			close(a.ready)
			return
		}
		select {
		case <-a.quit:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// check returns nil when vigil can do its work: the streams are
// provisioned, the embedded server is healthy, every connection is up and
// JetStream answers on it, and every role that can tell says it is ready.
func (a *app) check(ctx context.Context) error {
	if !a.provisioned.Load() {
		return errors.New("starting: connecting to nats and provisioning streams")
	}
	if a.emb != nil {
		if err := a.emb.Healthy(); err != nil {
			return err
		}
	}
	for _, r := range a.roles {
		if err := bus.Ready(ctx, r.conn.nc, r.assets.JS); err != nil {
			return fmt.Errorf("role %s: %w", r.name, err)
		}
		if rr, ok := r.role.(readier); ok {
			if err := rr.Ready(ctx); err != nil {
				return fmt.Errorf("role %s: %w", r.name, err)
			}
		}
	}
	return nil
}

// newGuard returns the API token guard of cfg, or nil when cfg has no
// tokens; then the API is open, which validate allowed only on loopback or
// with --insecure, and newGuard says so in the log.
func newGuard(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*auth.Guard, error) {
	if len(cfg.Auth.Tokens) == 0 {
		if auth.Loopback(cfg.HTTPAddr) {
			log.Warn("the HTTP API runs without tokens: open to every user of this machine; configure API tokens (--auth-tokens, docs/auth.md) before listening beyond loopback",
				"http_addr", cfg.HTTPAddr)
		} else {
			log.Warn("INSECURE: the HTTP API runs without tokens on an address beyond loopback (--insecure): anyone who reaches it may read, send, cancel and silence; configure API tokens (--auth-tokens, docs/auth.md)",
				"http_addr", cfg.HTTPAddr)
		}
		return nil, nil
	}
	var opts []auth.Option
	if cfg.Auth.CSRFKey != "" {
		opts = append(opts, auth.WithCSRFKey([]byte(cfg.Auth.CSRFKey)))
	}
	if wt := cfg.Legacy.WatchTower; wt.on(cfg.Legacy.Addr) {
		// Legacy users log in to the web pages with the watchTower password.
		opts = append(opts, auth.WithPassword("watchtower", wt.Password))
	}
	g, err := auth.NewGuard(cfg.Auth.Tokens, log.With("component", "auth"), reg, opts...)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return g, nil
}

// handler returns the process's HTTP handler: the health endpoints, the
// metrics of reg (behind guard when protectMetrics), the OpenAPI document,
// and the roles' routes. Only the roles' routes need a token: the health
// endpoints, the document and, by default, the metrics stay open.
func (a *app) handler(reg *prometheus.Registry, guard *auth.Guard, lim *limit.Limiter, protectMetrics bool) http.Handler {
	rt := chi.NewRouter()
	rt.Use(lim.Body) // every route, including the roles' routes mounted below
	rt.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.check(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	if guard != nil && protectMetrics {
		metrics = guard.Require(auth.ScopeRead, metrics)
	}
	rt.Method(http.MethodGet, "/metrics", metrics)
	rt.Method(http.MethodGet, openapi.Path, openapi.Handler())
	rt.NotFound(func(w http.ResponseWriter, r *http.Request) {
		h := a.routes.Load()
		if h == nil {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "starting"})
			return
		}
		(*h).ServeHTTP(w, r)
	})
	rt.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		// A role may serve another method on a path the health router knows.
		if h := a.routes.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	})
	return rt
}

// mountPages mounts the web pages (/gui, services/api/web) on rt, with the
// events explorer's presets of legacy.watchtower.events_presets.
func mountPages(rt chi.Router, cfg Config, guard *auth.Guard, log *slog.Logger) error {
	var presets []web.Preset
	for _, p := range cfg.Legacy.WatchTower.EventsPresets {
		presets = append(presets, web.Preset{Name: p.Name, Service: p.Service, Message: p.Message})
	}
	pages, err := web.New(web.Config{Guard: guard, Presets: presets, Log: log})
	if err != nil {
		return err
	}
	pages.Routes(rt)
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// HTTPAddr returns the address the HTTP server is bound to (with the real
// port when --http-addr asked for port 0).
func (a *app) HTTPAddr() string { return a.ln.Addr().String() }

// NATSURL returns the URL NATS clients use: the embedded server's client
// port, "" when it is off, or --nats-url. It may hold a password: redact it
// before logging.
func (a *app) NATSURL() string { return a.natsURL }

// finish marks the app done with err (nil when ctx ended); the first call
// wins.
func (a *app) finish(err error) {
	a.doneOnce.Do(func() {
		a.err = err
		close(a.done)
	})
}

// Wait blocks until startApp's ctx ends, returning nil, or until a role or
// the HTTP server fails, returning that error. Call Stop afterwards.
func (a *app) Wait() error {
	<-a.done
	return a.err
}

// Stop shuts vigil down without losing anything acknowledged: the HTTP
// server finishes its in-flight requests (whose PubAcks have arrived), the
// roles stop and their Run returns, every connection drains (flushing acks)
// and closes, and the embedded server stops and flushes its store. ctx
// bounds the whole; Stop returns what went wrong on the way.
func (a *app) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() { a.stopErr = a.stop(ctx) })
	return a.stopErr
}

func (a *app) stop(ctx context.Context) error {
	a.stopCtx()
	a.finish(nil)
	close(a.quit)
	var errs []error
	if a.srv != nil {
		if err := a.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if err := a.legacy.stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if a.cancelRoles != nil {
		a.cancelRoles()
		done := make(chan error, 1)
		go func() { done <- a.group.Wait() }()
		select {
		case err := <-done:
			// A role's own failure was already returned by Wait.
			if err != nil && !errors.Is(err, a.err) {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("roles did not stop: %w", ctx.Err()))
		}
	}
	for _, c := range a.conns {
		if err := c.nc.Drain(); err != nil {
			// Disconnected (reconnecting) connections cannot drain: what
			// they hold was never acknowledged, so closing loses nothing.
			c.nc.Close()
			switch {
			case errors.Is(err, nats.ErrConnectionReconnecting):
				a.log.Warn("nats disconnected at shutdown; closed without draining", "role", c.name)
			case !errors.Is(err, nats.ErrConnectionClosed):
				errs = append(errs, fmt.Errorf("role %s: nats drain: %w", c.name, err))
			}
		}
	}
	for _, c := range a.conns {
		select {
		case <-c.closed:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("role %s: nats drain: %w", c.name, ctx.Err()))
			c.nc.Close()
		}
	}
	if a.emb != nil {
		a.emb.Shutdown(ctx)
	}
	a.watchers.Wait()
	return errors.Join(errs...)
}

// serverLogger returns the logger of the embedded nats-server: its notices
// are start-up chatter, so it logs them only at debug level.
func serverLogger(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{Handler: log.With("component", "nats-server").Handler(), min: slog.LevelWarn})
}

// minLevel drops records below min on top of its handler's own level, unless
// the handler is at debug level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	if h.Handler.Enabled(ctx, slog.LevelDebug) {
		return true
	}
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
