package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/vigil-monitor/vigil"
)

// FleetConfig configures the fleet-monitor surface
// (Lucretiel/fleet-monitor-server, compat.md §3).
type FleetConfig struct {
	// UnitEvery and MachineEvery are the pauses after each unit and machine
	// poll (-u 2 s, -m 10 s).
	UnitEvery    time.Duration `yaml:"unit_every"`
	MachineEvery time.Duration `yaml:"machine_every"`
	// Fleetctl, when set, polls this fleetctl binary as the original did
	// (-c) instead of drawing the feed from vigil's hosts and services.
	Fleetctl string `yaml:"fleetctl"`
	// Endpoint (-e) adds --endpoint http://HOST:EndpointPort (default
	// 4001); Tunnel (-t) adds --tunnel HOST:TunnelPort (default 22). Only
	// one of them may be set.
	Endpoint     string `yaml:"endpoint"`
	EndpointPort int    `yaml:"endpoint_port"`
	Tunnel       string `yaml:"tunnel"`
	TunnelPort   int    `yaml:"tunnel_port"`
	// ClientBuffer is how many frames may wait for one client; a client
	// that falls further behind is disconnected (default 16).
	ClientBuffer int `yaml:"client_buffer"`
}

// Frame is one fleet message: {"type","fields","items"}, in that order.
type Frame struct {
	Type   string     `json:"type"`
	Fields []string   `json:"fields"`
	Items  [][]string `json:"items"`
}

var (
	unitFields    = []string{"unit", "load", "active", "sub", "machine"}
	machineFields = []string{"machine", "ip", "metadata"}
)

// Fleet is the fleet-monitor WebSocket feed: every client gets every unit
// frame (each UnitEvery) and machine frame (each MachineEvery); client
// messages are read and ignored.
type Fleet struct {
	cfg FleetConfig
	be  *Backend
	log *slog.Logger

	mu      sync.Mutex
	clients map[chan []byte]func()
}

// NewFleet returns the fleet surface; it fails when both Endpoint and
// Tunnel are set.
func NewFleet(cfg FleetConfig, be *Backend, log *slog.Logger) (*Fleet, error) {
	if cfg.UnitEvery <= 0 {
		cfg.UnitEvery = 2 * time.Second
	}
	if cfg.MachineEvery <= 0 {
		cfg.MachineEvery = 10 * time.Second
	}
	if cfg.EndpointPort == 0 {
		cfg.EndpointPort = 4001
	}
	if cfg.TunnelPort == 0 {
		cfg.TunnelPort = 22
	}
	if cfg.ClientBuffer <= 0 {
		cfg.ClientBuffer = 16
	}
	if cfg.Endpoint != "" && cfg.Tunnel != "" {
		return nil, fmt.Errorf("fleet: endpoint and tunnel cannot be combined")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{cfg: cfg, be: be, log: log.With("component", "legacy-fleet"), clients: map[chan []byte]func(){}}, nil
}

// ServeHTTP upgrades any path from any origin (the dashboard is served
// from another origin) and streams frames until the client goes or falls
// behind.
func (f *Fleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 10)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch := make(chan []byte, f.cfg.ClientBuffer)
	f.mu.Lock()
	f.clients[ch] = cancel
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.clients, ch)
		f.mu.Unlock()
	}()
	go func() { // client messages are ignored; reading handles pings and close
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			_ = c.Close(websocket.StatusPolicyViolation, "too slow or gone")
			return
		case b := <-ch:
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Write(wctx, websocket.MessageText, b)
			wcancel()
			if err != nil {
				return
			}
		}
	}
}

// broadcast queues b for every client; a client whose buffer is full is
// disconnected, so memory per client stays bounded.
func (f *Fleet) broadcast(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch, drop := range f.clients {
		select {
		case ch <- b:
		default:
			delete(f.clients, ch)
			drop()
		}
	}
}

// Run polls units and machines and broadcasts each result until ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	loop := func(every time.Duration, poll func(context.Context) (*Frame, error)) {
		defer wg.Done()
		for {
			fr, err := poll(ctx)
			if err != nil {
				f.log.Warn("fleet poll failed", "err", err)
			} else if b, err := json.Marshal(fr); err == nil {
				f.broadcast(b)
			}
			t := time.NewTimer(every)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	wg.Add(2)
	go loop(f.cfg.UnitEvery, f.units)
	go loop(f.cfg.MachineEvery, f.machines)
	wg.Wait()
	return nil
}

// fleetctlArgs returns the global flags and then args.
func (f *Fleet) fleetctlArgs(args ...string) []string {
	var g []string
	switch {
	case f.cfg.Endpoint != "":
		g = []string{"--endpoint", "http://" + f.cfg.Endpoint + ":" + strconv.Itoa(f.cfg.EndpointPort)}
	case f.cfg.Tunnel != "":
		g = []string{"--tunnel", f.cfg.Tunnel + ":" + strconv.Itoa(f.cfg.TunnelPort)}
	}
	return append(g, args...)
}

// fleetctl runs the binary and splits its output into rows on runs of
// whitespace, as the original.
func (f *Fleet) fleetctl(ctx context.Context, args ...string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, f.cfg.Fleetctl, f.fleetctlArgs(args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fleetctl %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	rows := [][]string{}
	for line := range strings.SplitSeq(out.String(), "\n") {
		if fs := strings.Fields(line); len(fs) > 0 {
			rows = append(rows, fs)
		}
	}
	return rows, nil
}

// units is a unit frame: fleetctl list-units, or vigil's services mapped
// to systemd-like states (up → active/running, late → active/late, down
// → failed/failed, cancelled → inactive/dead), machine = the pulse's host.
func (f *Fleet) units(ctx context.Context) (*Frame, error) {
	fr := &Frame{Type: "unit", Fields: unitFields, Items: [][]string{}}
	if f.cfg.Fleetctl != "" {
		rows, err := f.fleetctl(ctx, "list-units", "-l", "-no-legend", "-fields", strings.Join(unitFields, ","))
		if err != nil {
			return nil, err
		}
		fr.Items = rows
		return fr, nil
	}
	ss, err := f.be.services(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		active, sub := "active", "running"
		switch s.Status {
		case vigil.StatusLate:
			sub = "late"
		case vigil.StatusDown:
			active, sub = "failed", "failed"
		case vigil.StatusCancelled:
			active, sub = "inactive", "dead"
		}
		machine := s.Host
		if machine == "" {
			machine = "-"
		}
		fr.Items = append(fr.Items, []string{s.Name, "loaded", active, sub, machine})
	}
	return fr, nil // service names are unique: a dashboard keys rows by them
}

// machines is a machine frame: fleetctl list-machines, or vigil's hosts
// (id, first non-loopback IPv4 of the latest stats, metadata
// "hostname=…,os=…" sorted by key).
func (f *Fleet) machines(ctx context.Context) (*Frame, error) {
	fr := &Frame{Type: "machine", Fields: machineFields, Items: [][]string{}}
	if f.cfg.Fleetctl != "" {
		rows, err := f.fleetctl(ctx, "list-machines", "-l", "-no-legend", "-fields", strings.Join(machineFields, ","))
		if err != nil {
			return nil, err
		}
		fr.Items = rows
		return fr, nil
	}
	hs, err := f.be.hosts(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		ip := "-"
		var st vigil.HostStats
		if err := f.be.get(ctx, "/v1/hosts/"+url.PathEscape(h.Host), nil, &st); err == nil {
			for _, n := range st.Network {
				if a, err := netip.ParseAddr(n.IP); err == nil && !a.IsLoopback() {
					ip = n.IP
					break
				}
			}
		}
		var meta []string
		if h.Hostname != "" {
			meta = append(meta, "hostname="+h.Hostname)
		}
		if h.OS != "" {
			meta = append(meta, "os="+h.OS)
		}
		sort.Strings(meta)
		m := strings.Join(meta, ",")
		if m == "" {
			m = "-"
		}
		fr.Items = append(fr.Items, []string{h.Host, ip, m})
	}
	return fr, nil
}
