package legacy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

// Probe is one synthetic HTTP check (watchTower's pings[] entry, compat.md
// §2.6). Each success stores a pulse for Service with next_in NextIn
// (default 2×Frequency), so the watchdog alerts on a failing probe like on
// any silent service.
type Probe struct {
	Service string `yaml:"service"`
	URL     string `yaml:"url"`
	// Method is the HTTP method (default GET).
	Method string `yaml:"method"`
	// ExpectedStatus is the status that counts as success (default 200).
	ExpectedStatus int `yaml:"expected_status"`
	// Timeout bounds one check (default 10 s, or Frequency/2 when smaller).
	Timeout time.Duration `yaml:"timeout"`
	// Frequency is the period between checks (default 30 s).
	Frequency time.Duration `yaml:"frequency"`
	// NextIn is the next_in of the pulse of a success (default 2×Frequency).
	NextIn time.Duration `yaml:"next_in"`
	// Proxy is an optional http(s) proxy URL.
	Proxy string `yaml:"proxy"`
	// InsecureSkipVerify skips TLS verification, as the original did.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// AlertType and AlertTarget are the owner told when the probe's
	// service goes down (the pulse's owner), as in watchTower.
	AlertType   string `yaml:"alert_type"`
	AlertTarget string `yaml:"alert_target"`
}

// probeState is a probe and what its last runs found.
type probeState struct {
	Probe
	client *http.Client
	owner  *vigil.Owner

	mu          sync.Mutex
	lastPing    time.Time
	lastSuccess time.Time
	failing     bool
}

type prober struct {
	probes []*probeState
	be     *Backend
	log    *slog.Logger
	now    func() time.Time
}

func newProber(ps []Probe, be *Backend, log *slog.Logger, now func() time.Time) (*prober, error) {
	pr := &prober{be: be, log: log, now: now}
	for i, p := range ps {
		if err := vigil.ValidateName(p.Service); err != nil {
			return nil, fmt.Errorf("watchtower: probe %d: %w", i, err)
		}
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("watchtower: probe %q: url %q must be an absolute http(s) URL", p.Service, p.URL)
		}
		if p.Method == "" {
			p.Method = http.MethodGet
		}
		p.Method = strings.ToUpper(p.Method)
		if p.ExpectedStatus == 0 {
			p.ExpectedStatus = http.StatusOK
		}
		if p.Frequency <= 0 {
			p.Frequency = 30 * time.Second
		}
		if p.Timeout <= 0 {
			p.Timeout = min(10*time.Second, p.Frequency/2)
		}
		if p.NextIn <= 0 {
			p.NextIn = 2 * p.Frequency
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: p.InsecureSkipVerify} //nolint:gosec // opt-in, as watchTower's verify=False
		tr.Proxy = nil
		if p.Proxy != "" {
			pu, err := url.Parse(p.Proxy)
			if err != nil || pu.Host == "" {
				return nil, fmt.Errorf("watchtower: probe %q: bad proxy URL", p.Service)
			}
			tr.Proxy = http.ProxyURL(pu)
		}
		st := &probeState{Probe: p, client: &http.Client{Transport: tr, Timeout: p.Timeout}}
		if p.AlertType != "" || p.AlertTarget != "" {
			o := &vigil.Owner{Type: p.AlertType, Target: p.AlertTarget}
			if err := o.Validate(); err != nil {
				return nil, fmt.Errorf("watchtower: probe %q: %w", p.Service, err)
			}
			st.owner = o
		}
		pr.probes = append(pr.probes, st)
	}
	return pr, nil
}

// run checks every probe at each multiple of its frequency (aligned to the
// Unix epoch, so replicas tick together) until ctx ends.
func (pr *prober) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range pr.probes {
		wg.Go(func() {
			for {
				now := pr.now()
				next := now.Truncate(p.Frequency).Add(p.Frequency)
				t := time.NewTimer(next.Sub(now))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				pr.check(ctx, p, next)
			}
		})
	}
	wg.Wait()
	return nil
}

// claim reports whether this replica runs the check of slot: the first to
// create the slot's key in vigil_leases wins.
func (pr *prober) claim(ctx context.Context, p *probeState, slot time.Time) bool {
	if pr.be.Leases == nil {
		return true
	}
	key := "legacy-probe." + vigil.Token(p.Service) + "." + strconv.FormatInt(slot.Unix(), 10)
	_, err := pr.be.Leases.Create(ctx, key, []byte("1"))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false
	}
	if err != nil {
		pr.log.Warn("probe claim failed; probing anyway", "service", p.Service, "err", err)
	}
	return true
}

// check runs one probe; a success stores its pulse.
func (pr *prober) check(ctx context.Context, p *probeState, slot time.Time) {
	if !pr.claim(ctx, p, slot) {
		return
	}
	ok, err := p.do(ctx)
	now := pr.now()
	p.mu.Lock()
	p.lastPing = now
	if ok {
		p.lastSuccess = now
	}
	p.failing = !ok
	p.mu.Unlock()
	if !ok {
		pr.log.Info("probe failed", "service", p.Service, "err", err)
		return
	}
	pulse := vigil.Pulse{Service: p.Service, NextIn: vigil.Seconds(p.NextIn), Owner: p.owner}
	if _, err := pr.be.Intake.StorePulse(ctx, pulse, OriginWatchTower); err != nil {
		pr.log.Warn("probe pulse not stored", "service", p.Service, "err", err)
	}
}

func (p *probeState) do(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, p.Method, p.URL, nil)
	if err != nil {
		return false, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	if resp.StatusCode != p.ExpectedStatus {
		return false, fmt.Errorf("status %d, want %d", resp.StatusCode, p.ExpectedStatus)
	}
	return true, nil
}

// ping is watchTower's PING object (compat.md §2.2).
type ping struct {
	AlertTarget     string  `json:"alertTarget"`
	AlertType       string  `json:"alertType"`
	Alerted         bool    `json:"alerted"`
	ExpectedCode    int     `json:"expectedCode"`
	Frequency       int64   `json:"frequency"`
	LastPing        any     `json:"lastPing"`
	LastPingSuccess any     `json:"lastPingSuccess"`
	Login           *string `json:"login"`
	Method          string  `json:"method"`
	Password        *string `json:"password"`
	ProxyURL        *string `json:"proxyURL"`
	Service         string  `json:"service"`
	Timeout         int64   `json:"timeout"`
	URL             string  `json:"url"`
}

func (pr *prober) list(human bool, loc *time.Location) []ping {
	out := make([]ping, 0, len(pr.probes))
	for _, p := range pr.probes {
		p.mu.Lock()
		last, succ, failing := p.lastPing, p.lastSuccess, p.failing
		p.mu.Unlock()
		pg := ping{
			AlertTarget: p.AlertTarget, AlertType: p.AlertType, Alerted: failing, ExpectedCode: p.ExpectedStatus,
			Frequency: int64(p.Frequency / time.Second), Method: strings.ToLower(p.Method), Service: p.Service,
			Timeout: int64(p.Timeout / time.Second), URL: p.URL,
		}
		if p.Proxy != "" {
			px := p.Proxy
			pg.ProxyURL = &px
		}
		pg.LastPing, pg.LastPingSuccess = epochOr(last, human, loc), epochOr(succ, human, loc)
		out = append(out, pg)
	}
	return out
}

func epochOr(t time.Time, human bool, loc *time.Location) any {
	var n int64
	if !t.IsZero() {
		n = t.Unix()
	}
	if human {
		return time.Unix(n, 0).In(loc).Format(humanLayout)
	}
	return n
}
