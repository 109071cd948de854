// Package legacy serves the wire protocols of the four tools vigil replaces
// (watchTower, Traylert, System Monitor and fleet-monitor) so that their
// deployed clients keep working unchanged. Legacy traffic is translated at
// the edge into vigil's own pipeline: a watchTower pulse is a vigil pulse
// (Record.Origin "watchtower"), a Traylert alert a vigil manual alert,
// System Monitor stats are host stats, and the fleet feed is drawn from
// vigil's hosts and services. Writes go through ingest's Store* methods
// (the same code path as the HTTP routes, answered after the JetStream
// ack); reads go through the api role's routes in process. The protocol
// spec is ../shared/compat.md; docs/legacy.md lists what was kept and fixed.
package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/ingest"
)

// Backend is what the legacy surfaces need from vigil: Intake stores
// (ingest's Store* methods) and API answers vigil's read routes
// (GET /v1/services, /v1/events, /v1/alerts, /v1/hosts), usually the api
// role's chi router served in process, without the token guard.
type Backend struct {
	Intake *ingest.Role
	API    http.Handler
	// Leases is KV bucket vigil_leases; with it, replicas claim each probe
	// run so a probe runs once per period however many replicas serve
	// watchTower. Nil runs every probe here.
	Leases jetstream.KeyValue
}

// errNotFound is a 404 from the API.
var errNotFound = errors.New("not found")

// maxListPages bounds how many pages a legacy list follows (1000 items
// each), so one request cannot walk an unbounded history.
const maxListPages = 20

// page is the list shape of the API.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// recorder is a minimal in-memory http.ResponseWriter.
type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// get runs GET path?q on the API and decodes a 200 body into out. Other
// statuses are errors carrying the API's error text.
func (b *Backend) get(ctx context.Context, path string, q url.Values, out any) error {
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	rec := &recorder{h: http.Header{}, code: http.StatusOK}
	b.API.ServeHTTP(rec, req)
	if rec.code == http.StatusNotFound {
		return fmt.Errorf("GET %s: %w", path, errNotFound)
	}
	if rec.code != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e) // best effort: the status says enough
		return fmt.Errorf("GET %s: %d %s", path, rec.code, e.Error)
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// list follows the cursors of a list route for at most maxListPages pages.
func list[T any](ctx context.Context, b *Backend, path string, q url.Values) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", "1000")
	var all []T
	for range maxListPages {
		var p page[T]
		if err := b.get(ctx, path, q, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	return all, nil
}

// services returns every service's status from GET /v1/services.
func (b *Backend) services(ctx context.Context) ([]vigil.ServiceStatus, error) {
	return list[vigil.ServiceStatus](ctx, b, "/v1/services", nil)
}

// hosts returns the latest summary of every host from GET /v1/hosts.
func (b *Backend) hosts(ctx context.Context) ([]vigil.HostSummary, error) {
	return list[vigil.HostSummary](ctx, b, "/v1/hosts", nil)
}

// Services is services for tests and callers outside the package.
func (b *Backend) Services(ctx context.Context) ([]vigil.ServiceStatus, error) {
	return b.services(ctx)
}
