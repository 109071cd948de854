package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ingestRoute reports whether ingest owns the request: the writes of the
// native API (POST /v1/pulses, /v1/events, /v1/alerts, /v1/hosts/{id}/stats
// and DELETE /v1/services/{name}).
func ingestRoute(r *http.Request) bool {
	p := r.URL.Path
	switch r.Method {
	case http.MethodPost:
		return p == "/v1/pulses" || p == "/v1/events" || p == "/v1/alerts" ||
			(strings.HasPrefix(p, "/v1/hosts/") && strings.HasSuffix(p, "/stats"))
	case http.MethodDelete:
		return strings.HasPrefix(p, "/v1/services/")
	}
	return false
}

// newGateway returns the handler: requests ingestRoute selects go to
// ingestAddr, the rest to apiAddr; /healthz answers for the gateway itself.
func newGateway(ingestAddr, apiAddr string, log *slog.Logger) (http.Handler, error) {
	in, err := newUpstream(ingestAddr, log)
	if err != nil {
		return nil, err
	}
	api, err := newUpstream(apiAddr, log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ingestRoute(r) {
			in.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
	return mux, nil
}

// upstream proxies to every address of one host:port.
type upstream struct {
	host, port string
	next       atomic.Uint64

	mu       sync.Mutex
	addrs    []string  // last successful lookup of host
	resolved time.Time // when addrs was looked up
	proxy    *httputil.ReverseProxy
	log      *slog.Logger
}

func newUpstream(hostport string, log *slog.Logger) (*upstream, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", hostport, err)
	}
	u := &upstream{host: host, port: port, log: log}
	target := &url.URL{Scheme: "http", Host: hostport}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = u.dial
	tr.MaxIdleConnsPerHost = 256
	// Keep-alive connections stick to one replica; recycling idle ones
	// after a while lets new replicas get traffic.
	tr.IdleConnTimeout = 30 * time.Second
	u.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport:     tr,
		FlushInterval: -1, // Server-Sent Events pass through at once.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("upstream failed", "upstream", hostport, "method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"error":"upstream ` + host + ` unavailable, retry later"}` + "\n"))
		},
	}
	return u, nil
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.proxy.ServeHTTP(w, r) }

// dial connects to one of the addresses the upstream host resolves to,
// starting with the next in turn and trying the others when it refuses: a
// killed replica costs a failed dial, not a failed request.
func (u *upstream) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	addrs, err := u.resolve(ctx)
	if err != nil {
		return nil, err
	}
	start := u.next.Add(1)
	var d net.Dialer
	var last error
	for i := range addrs {
		a := addrs[(start+uint64(i))%uint64(len(addrs))]
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialContext(dctx, network, net.JoinHostPort(a, u.port))
		cancel()
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// resolveEvery bounds how often the gateway asks DNS for the replicas: under
// load a lookup per new connection overwhelmed Docker's embedded resolver
// (5 s timeouts) in the compose fault test.
const resolveEvery = time.Second

// resolve returns the addresses of the upstream host, looked up at most once
// per resolveEvery; when a lookup fails it keeps the last good answer, so a
// slow resolver costs no request.
func (u *upstream) resolve(ctx context.Context) ([]string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.addrs != nil && time.Since(u.resolved) < resolveEvery {
		return u.addrs, nil
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, u.host)
	switch {
	case err == nil && len(addrs) > 0:
		u.addrs, u.resolved = addrs, time.Now()
	case u.addrs != nil:
		u.log.Debug("upstream lookup failed; using the last answer", "host", u.host, "err", err)
		u.resolved = time.Now()
	default:
		return nil, err
	}
	return u.addrs, nil
}
