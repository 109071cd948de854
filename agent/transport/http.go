package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/agent/buffer"
)

// HTTPConfig says how the agent reaches vigil over HTTP.
type HTTPConfig struct {
	// URL is the base URL of vigil's HTTP API (ingest, or a gateway in
	// front of it), optionally with a path prefix: "https://vigil.example.com".
	URL string
	// Token is sent as "Authorization: Bearer <token>"; it needs the ingest
	// scope (and read for check's registration probe).
	Token string
	// TLSCA is a PEM file of the CA that signed the server's certificate,
	// for a private CA; empty uses the system's roots.
	TLSCA string
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
}

// HTTP is the HTTP transport: POST /v1/hosts/{id}/stats, POST /v1/pulses
// and POST /v1/alerts, each with the Item.ID as Idempotency-Key.
type HTTP struct {
	base  string
	token string
	hc    *http.Client
}

// maxAnswer bounds how much of an answer is read, in bytes.
const maxAnswer = 64 << 10

// NewHTTP returns the HTTP transport. It fails on a URL that is not an
// absolute http(s) URL and on an unreadable CA file.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("http url %q: want http://host:port or https://host[/prefix]", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	hc, err := NewHTTPClient(cfg.TLSCA, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	return &HTTP{base: strings.TrimSuffix(u.String(), "/"), token: cfg.Token, hc: hc}, nil
}

// NewHTTPClient returns an HTTP client that trusts the CA in the PEM file
// tlsCA (the system's roots when empty) and bounds each request by timeout
// (none when 0: for event streams). It fails on an unreadable CA file.
func NewHTTPClient(tlsCA string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone() //nolint:forcetypeassert // the standard library's own type
	if tlsCA != "" {
		pem, err := os.ReadFile(tlsCA)
		if err != nil {
			return nil, fmt.Errorf("http tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http tls ca %s: no PEM certificate", tlsCA)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// Close releases idle connections.
func (t *HTTP) Close() { t.hc.CloseIdleConnections() }

// Send POSTs it to its route. A 2xx is success; a 4xx other than 401, 403,
// 408 and 429 is ErrRejected; anything else (no answer, 5xx, bad
// credentials, which a fixed configuration will cure) is an error to retry.
func (t *HTTP) Send(ctx context.Context, it buffer.Item) error {
	var path string
	switch it.Kind {
	case KindStats:
		path = "/v1/hosts/" + url.PathEscape(it.Key) + "/stats"
	case KindPulse:
		path = "/v1/pulses"
	case KindAlert:
		path = "/v1/alerts"
	default:
		return rejected("unknown kind %q", it.Kind)
	}
	code, body, err := t.do(ctx, http.MethodPost, path, it.ID, it.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", it.Kind, err)
	}
	return statusError(it.Kind, code, body)
}

func (t *HTTP) do(ctx context.Context, method, path, key string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// Check probes without storing anything: a stats POST with an empty object
// and a pulse POST with one, which ingest answers 400 once the token has
// passed (401 or 403 name bad credentials), then GET /v1/hosts/{id} to tell
// whether the id is registered (info only; it needs the read scope).
func (t *HTTP) Check(ctx context.Context, host string) Report {
	var r Report
	probe := func(name, path, what string) bool {
		code, body, err := t.do(ctx, http.MethodPost, path, "", []byte(`{}`))
		switch {
		case err != nil:
			r = append(r, Probe{Name: name, Detail: err.Error()})
			return false
		case code == http.StatusBadRequest:
			r = append(r, Probe{Name: name, OK: true, Detail: "POST " + path + " " + what})
			return true
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			r = append(r, Probe{Name: name, Detail: fmt.Sprintf("credentials refused (%d): %s", code, errorText(body))})
		default:
			r = append(r, Probe{Name: name, Detail: fmt.Sprintf("unexpected answer %d: %s", code, errorText(body))})
		}
		return false
	}
	if !probe("stats route", "/v1/hosts/"+url.PathEscape(host)+"/stats", "reached with valid credentials") {
		return r
	}
	probe("pulse route", "/v1/pulses", "reached with valid credentials")

	p := Probe{Name: "system id", Info: true}
	code, body, err := t.do(ctx, http.MethodGet, "/v1/hosts/"+url.PathEscape(host), "", nil)
	switch {
	case err != nil:
		p.Detail = "cannot tell whether " + host + " is registered: " + err.Error()
	case code == http.StatusNotFound:
		p.OK, p.Detail = true, host+" has not been registered yet (no stats stored)"
	case code == http.StatusOK:
		p.OK, p.Detail = true, host+" is registered"
		var s struct {
			At time.Time `json:"at"`
		}
		if json.Unmarshal(body, &s) == nil && !s.At.IsZero() {
			p.Detail += ", last stats at " + s.At.Format(time.RFC3339)
		}
	default:
		p.Detail = fmt.Sprintf("cannot tell whether %s is registered: %d %s", host, code, errorText(body))
	}
	return append(r, p)
}

// IsRejected reports whether err means the server refused the message for
// good.
func IsRejected(err error) bool { return errors.Is(err, ErrRejected) }
