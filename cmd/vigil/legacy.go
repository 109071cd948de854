package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil/internal/flagconf"
	"github.com/vigil-monitor/vigil/internal/limit"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

// LegacyConfig configures the listeners of the legacy protocols
// (services/legacy, docs/legacy.md): watchTower, Traylert, System Monitor
// and fleet-monitor. They run only in vigil all, which holds the ingest and
// api roles they translate to. Everything is off by default.
//
// Addr is the combined listener (the legacy tools use :5000): it serves
// every enabled surface that has no address of its own, dispatched as
// compat.md §0 says, a surface with a Prefix under that path prefix. A
// surface with its own Addr is served there only; fleet's own address is
// :8989 (the original's port) unless set ("off": the combined listener).
// A surface's Enabled defaults to true when Addr or the surface's own
// address is set, and to false otherwise.
type LegacyConfig struct {
	Addr    string `yaml:"addr"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`

	WatchTower LegacyWatchTowerConfig `yaml:"watchtower"`
	Traylert   LegacyTraylertConfig   `yaml:"traylert"`
	SysMon     LegacySysMonConfig     `yaml:"sysmon"`
	Fleet      LegacyFleetConfig      `yaml:"fleet"`
}

// LegacySurface says whether and where one legacy surface listens. Addr is
// its own listener (host:port; "" or "off": the combined one, but fleet's
// "" is :8989); Prefix is an
// optional path prefix ("/watchtower") stripped before the surface sees the
// path; TLSCert and TLSKey (PEM files) put its own listener on TLS.
type LegacySurface struct {
	Enabled *bool  `yaml:"enabled"`
	Addr    string `yaml:"addr"`
	Prefix  string `yaml:"prefix"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// LegacyWatchTowerConfig is the watchTower surface: where it listens and
// legacy.WatchTowerConfig (password — a secret, never logged —, time_zone,
// version, events_presets, default_owner, gui, probes, max_body).
type LegacyWatchTowerConfig struct {
	LegacySurface           `yaml:",inline"`
	legacy.WatchTowerConfig `yaml:",inline"`
}

// LegacyTraylertConfig is the Traylert surface: where it listens and the
// fields of legacy.TraylertConfig. Key is the AES key (a secret, never
// logged); LowDisk 0 turns the low-disk alert off.
type LegacyTraylertConfig struct {
	LegacySurface `yaml:",inline"`
	AES           bool     `yaml:"aes"`
	Key           string   `yaml:"key"`
	DiskPath      string   `yaml:"disk_path"`
	Allow         []string `yaml:"allow"`
	QueueLength   int      `yaml:"queue_length"`
	LowDisk       float64  `yaml:"low_disk"`
	Service       string   `yaml:"service"`
	TimeZone      string   `yaml:"time_zone"`
}

// LegacySysMonConfig is the System Monitor surface: where it listens and
// legacy.SysMonConfig (max_body).
type LegacySysMonConfig struct {
	LegacySurface       `yaml:",inline"`
	legacy.SysMonConfig `yaml:",inline"`
}

// LegacyFleetConfig is the fleet-monitor surface: where it listens (its
// own :8989 unless Addr says otherwise, as the original) and
// legacy.FleetConfig.
type LegacyFleetConfig struct {
	LegacySurface      `yaml:",inline"`
	legacy.FleetConfig `yaml:",inline"`
}

func defaultLegacyConfig() LegacyConfig {
	return LegacyConfig{
		Traylert: LegacyTraylertConfig{AES: true, DiskPath: ".", QueueLength: 2, LowDisk: 0.2, Service: "traylert"},
	}
}

// bindLegacy binds the legacy options that fit a flag; lists (probes,
// allow, presets), the default owner and enabled are YAML only.
func bindLegacy(b *flagconf.Binder, c *LegacyConfig) {
	b.Group = "Legacy protocols (docs/legacy.md; vigil all; off unless --legacy-addr or a surface's own address is set)"
	b.Str(&c.Addr, "legacy-addr", "legacy.addr", "combined listener (`host:port`, the legacy tools use :5000) of every enabled surface without its own address; empty: off")
	b.Str(&c.TLSCert, "legacy-tls-cert", "legacy.tls_cert", "PEM certificate `file` of the combined listener (TLS with --legacy-tls-key)")
	b.Str(&c.TLSKey, "legacy-tls-key", "legacy.tls_key", "PEM key `file` of the combined listener")
	surface := func(s *LegacySurface, name, usage, def string) {
		b.Str(&s.Addr, name+"-addr", "legacy."+name+".addr", "own listener (`host:port`) of the "+usage+" surface instead of the combined one; \"off\""+def+": the combined one")
		b.Str(&s.Prefix, name+"-prefix", "legacy."+name+".prefix", "path prefix of the "+usage+" surface (e.g. /"+name+"), stripped before it sees the path")
	}
	surface(&c.WatchTower.LegacySurface, "watchtower", "watchTower", " or empty")
	b.Secret(&c.WatchTower.Password, "watchtower-password", "legacy.watchtower.password", "watchTower password every client sends in header \"password\" (secret: never logged)")
	b.Str(&c.WatchTower.TimeZone, "watchtower-time-zone", "legacy.watchtower.time_zone", "IANA time zone of watchTower's human dates (empty: Europe/Paris)")
	surface(&c.Traylert.LegacySurface, "traylert", "Traylert", " or empty")
	b.Secret(&c.Traylert.Key, "traylert-key", "legacy.traylert.key", "Traylert AES key: 16, 24 or 32 UTF-8 bytes (secret: never logged)")
	b.Bool(&c.Traylert.AES, "traylert-aes", "legacy.traylert.aes", "wrap Traylert's GET / in the AES-EAX envelope (the Traylert client needs it)")
	b.Str(&c.Traylert.DiskPath, "traylert-disk-path", "legacy.traylert.disk_path", "`path` whose file system's free space Traylert reports")
	surface(&c.SysMon.LegacySurface, "sysmon", "System Monitor", " or empty")
	surface(&c.Fleet.LegacySurface, "fleet", "fleet-monitor", " (empty: :8989, the original's port)")
	b.Str(&c.Fleet.Fleetctl, "fleetctl", "legacy.fleet.fleetctl", "fleetctl binary `path` polled for the fleet feed (empty: vigil's services and hosts)")
	b.Str(&c.Fleet.Endpoint, "fleet-endpoint", "legacy.fleet.endpoint", "`host` of fleetctl --endpoint (port legacy.fleet.endpoint_port, default 4001)")
	b.Str(&c.Fleet.Tunnel, "fleet-tunnel", "legacy.fleet.tunnel", "`host` of fleetctl --tunnel (port legacy.fleet.tunnel_port, default 22)")
}

// ownAddr is the surface's own address, "" for the combined listener; def
// is the surface's default own address.
func (s LegacySurface) ownAddr(def string) string {
	switch s.Addr {
	case "off":
		return ""
	case "":
		return def
	}
	return s.Addr
}

// on reports whether the surface runs, given the combined address: as
// Enabled says, or when either listener address is set.
func (s LegacySurface) on(combined string) bool {
	if s.Enabled != nil {
		return *s.Enabled
	}
	return combined != "" || (s.Addr != "" && s.Addr != "off")
}

// surfaces returns each surface by name with its listener settings.
func (c LegacyConfig) surfaces() []namedSurface {
	return []namedSurface{
		{"watchtower", "", c.WatchTower.LegacySurface},
		{"traylert", "", c.Traylert.LegacySurface},
		{"sysmon", "", c.SysMon.LegacySurface},
		{"fleet", ":8989", c.Fleet.LegacySurface},
	}
}

// namedSurface is a surface with its name and default own address.
type namedSurface struct {
	name, def string
	s         LegacySurface
}

// addr is the surface's own address, "" for the combined listener.
func (n namedSurface) addr() string { return n.s.ownAddr(n.def) }

// active reports whether any legacy surface runs.
func (c LegacyConfig) active() bool {
	for _, s := range c.surfaces() {
		if s.s.on(c.Addr) {
			return true
		}
	}
	return false
}

func (c LegacyTraylertConfig) legacy() legacy.TraylertConfig {
	aes, low := c.AES, c.LowDisk
	return legacy.TraylertConfig{
		AES: &aes, Key: c.Key, DiskPath: c.DiskPath, Allow: c.Allow, QueueLength: c.QueueLength,
		LowDisk: &low, Service: c.Service, TimeZone: c.TimeZone,
	}
}

// validate checks the legacy section of command cmd: only vigil all runs
// legacy surfaces; each enabled one needs a listener; prefixes are paths;
// certificate and key come in pairs; the surfaces' own options are checked
// by building them.
func (c LegacyConfig) validate(cmd string) error {
	if !c.active() {
		return nil
	}
	if cmd != "all" {
		return fmt.Errorf("legacy: vigil %s cannot serve the legacy protocols (yaml legacy:): they need the ingest and api roles in one process; run them with vigil all", cmd)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--legacy-tls-cert and --legacy-tls-key: give both or neither")
	}
	for _, s := range c.surfaces() {
		if !s.s.on(c.Addr) {
			continue
		}
		if s.addr() == "" && c.Addr == "" {
			return fmt.Errorf("--%s-addr: the %s surface is enabled but has no listener: set --legacy-addr or --%s-addr", s.name, s.name, s.name)
		}
		if p := s.s.Prefix; p != "" && (!strings.HasPrefix(p, "/") || strings.TrimRight(p, "/") == "") {
			return fmt.Errorf("--%s-prefix %q: must be a path such as /%s", s.name, p, s.name)
		}
		if (s.s.TLSCert == "") != (s.s.TLSKey == "") {
			return fmt.Errorf("legacy.%s.tls_cert and tls_key: give both or neither", s.name)
		}
	}
	if c.WatchTower.on(c.Addr) {
		if _, err := legacy.NewWatchTower(c.WatchTower.WatchTowerConfig, nil, nil, nil); err != nil {
			return fmt.Errorf("legacy.watchtower: %w", err)
		}
	}
	if c.Traylert.on(c.Addr) {
		if _, err := legacy.NewTraylert(c.Traylert.legacy(), nil, nil); err != nil {
			return fmt.Errorf("legacy.traylert: %w", err)
		}
	}
	if c.Fleet.on(c.Addr) {
		if _, err := legacy.NewFleet(c.Fleet.FleetConfig, nil, nil); err != nil {
			return fmt.Errorf("legacy.fleet: %w", err)
		}
	}
	return nil
}

// redacted returns c with its secrets replaced, for logging.
func (c LegacyConfig) redacted() LegacyConfig {
	c.WatchTower.Password = flagconf.Redact(c.WatchTower.Password)
	c.Traylert.Key = flagconf.Redact(c.Traylert.Key)
	return c
}

// legacyServers are the running legacy listeners and loops.
type legacyServers struct {
	log     *slog.Logger
	servers []*legacyServer
	cancel  context.CancelFunc
	loops   sync.WaitGroup
	serving sync.WaitGroup
}

// legacyServer is one listener: "combined" or a surface's own.
type legacyServer struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// startLegacy starts the legacy listeners of cfg on the ingest and api
// roles among roles, and the probe and fleet loops; it returns nil when no
// surface is enabled. fail reports a listener that stops serving. The
// listeners are bound before it returns, so a busy port fails the start.
// pages is vigil's own router: a listener serving watchTower also serves
// vigil's web pages (/gui/…) and the /v1 routes they read from it, with the
// same token guard, so watchTower's /gui redirect lands on a working page.
// lim's per-address limit covers the legacy routes too (one bucket per
// client address across every listener), so guessing watchTower's shared
// password is as slow as guessing an API token.
func startLegacy(ctx context.Context, cfg LegacyConfig, roles []*running, pages http.Handler, lim *limit.Limiter, log *slog.Logger, fail func(error)) (*legacyServers, error) {
	if !cfg.active() {
		return nil, nil
	}
	be := &legacy.Backend{}
	rt := chi.NewRouter()
	for _, r := range roles {
		switch rr := r.role.(type) {
		case *ingest.Role:
			be.Intake, be.Leases = rr, r.assets.Leases
		case *api.Role:
			rr.Routes(rt) // the api's read routes in process, no token guard
		}
	}
	if be.Intake == nil || be.Leases == nil {
		return nil, errors.New("legacy: needs the ingest and api roles in this process (vigil all)")
	}
	be.API = rt

	handlers := map[string]http.Handler{}
	var wt *legacy.WatchTower
	var fl *legacy.Fleet
	on := func(s LegacySurface) bool { return s.on(cfg.Addr) }
	if on(cfg.WatchTower.LegacySurface) {
		var err error
		if wt, err = legacy.NewWatchTower(cfg.WatchTower.WatchTowerConfig, be, log, nil); err != nil {
			return nil, err
		}
		handlers["watchtower"] = wt
	}
	if on(cfg.Traylert.LegacySurface) {
		tr, err := legacy.NewTraylert(cfg.Traylert.legacy(), be, log)
		if err != nil {
			return nil, err
		}
		handlers["traylert"] = tr
	}
	if on(cfg.SysMon.LegacySurface) {
		handlers["sysmon"] = legacy.NewSysMon(cfg.SysMon.SysMonConfig, be, log)
	}
	if on(cfg.Fleet.LegacySurface) {
		var err error
		if fl, err = legacy.NewFleet(cfg.Fleet.FleetConfig, be, log); err != nil {
			return nil, err
		}
		handlers["fleet"] = fl
	}

	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &legacyServers{log: log.With("component", "legacy"), cancel: cancel}
	var (
		comb     legacy.Combined
		mux      = http.NewServeMux()
		prefixed bool
		names    []string
	)
	for _, s := range cfg.surfaces() {
		h, ok := handlers[s.name]
		if !ok {
			continue
		}
		if addr := s.addr(); addr != "" {
			h = lim.ByIP(withPrefix(s.s.Prefix, h))
			if s.name == "watchtower" {
				h = withPages(pages, h)
			}
			if err := l.listen(lctx, s.name, addr, lim.Body(h), s.s.TLSCert, s.s.TLSKey, []string{s.name}, fail); err != nil {
				return nil, errors.Join(err, l.stop(ctx))
			}
			continue
		}
		names = append(names, s.name)
		if p := strings.TrimRight(s.s.Prefix, "/"); p != "" {
			mux.Handle(p+"/", http.StripPrefix(p, h))
			mux.Handle(p, http.StripPrefix(p, h))
			prefixed = true
			continue
		}
		switch s.name {
		case "watchtower":
			comb.WatchTower = wt
			comb.GUI = cfg.WatchTower.GUI
		case "traylert":
			comb.Traylert, _ = h.(*legacy.Traylert)
		case "sysmon":
			comb.SysMon, _ = h.(*legacy.SysMon)
		case "fleet":
			comb.Fleet = fl
		}
	}
	if len(names) > 0 {
		var h http.Handler = &comb
		if prefixed {
			mux.Handle("/", &comb)
			h = mux
		}
		h = lim.ByIP(h)
		if comb.WatchTower != nil {
			h = withPages(pages, h)
		}
		if err := l.listen(lctx, "combined", cfg.Addr, lim.Body(h), cfg.TLSCert, cfg.TLSKey, names, fail); err != nil {
			return nil, errors.Join(err, l.stop(ctx))
		}
	}
	if wt != nil {
		l.loops.Go(func() { _ = wt.Run(lctx) }) // returns nil once lctx ends
	}
	if fl != nil {
		l.loops.Go(func() { _ = fl.Run(lctx) })
	}
	return l, nil
}

// withPages sends vigil's web pages (/gui/… but watchTower's own /gui/app
// and /gui/events, which redirect) and the /v1 API to pages, the rest to h.
func withPages(pages, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if (strings.HasPrefix(p, "/gui/") && p != "/gui/app" && p != "/gui/events") || strings.HasPrefix(p, "/v1/") {
			pages.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// withPrefix serves h under path prefix p (none when p is empty).
func withPrefix(p string, h http.Handler) http.Handler {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return h
	}
	return http.StripPrefix(p, h)
}

// listen binds addr and serves h there (TLS with cert and key), logging the
// bound address with the surfaces it serves.
func (l *legacyServers) listen(ctx context.Context, name, addr string, h http.Handler, cert, key string, surfaces []string, fail func(error)) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(l.log.With("listener", name).Handler(), slog.LevelWarn),
		// Requests, and the fleet WebSockets, end when the listeners stop.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return fmt.Errorf("legacy %s listener: tls: %w", name, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("legacy %s listener: %w", name, err)
	}
	l.servers = append(l.servers, &legacyServer{name: name, ln: ln, srv: srv})
	l.log.Info("legacy listener", "listener", name, "addr", ln.Addr().String(), "surfaces", surfaces, "tls", cert != "")
	l.serving.Go(func() {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("legacy %s listener: %w", name, err))
		}
	})
	return nil
}

// Addr returns the bound address of listener name ("combined" or a
// surface's name), or "" when it does not run.
func (l *legacyServers) Addr(name string) string {
	if l == nil {
		return ""
	}
	for _, s := range l.servers {
		if s.name == name {
			return s.ln.Addr().String()
		}
	}
	return ""
}

// stop lets the listeners finish their requests (whose stores are
// acknowledged), then ends the WebSockets and the loops.
func (l *legacyServers) stop(ctx context.Context) error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, s := range l.servers {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("legacy %s listener shutdown: %w", s.name, err))
		}
	}
	l.cancel()
	l.serving.Wait()
	l.loops.Wait()
	return errors.Join(errs...)
}

// LegacyAddr returns the bound address of legacy listener name
// ("combined", "watchtower", "traylert", "sysmon" or "fleet"), or "" when
// it does not run; tests use it with port 0.
func (a *app) LegacyAddr(name string) string { return a.legacy.Addr(name) }
