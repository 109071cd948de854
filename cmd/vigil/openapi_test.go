package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/openapi"
	"github.com/vigil-monitor/vigil/openapi/openapitest"
)

// servedRoutes returns every route of a running app: the health router's
// and the roles' router's, walked with chi.Walk.
func servedRoutes(t *testing.T, a *app) []openapitest.Route {
	t.Helper()
	outer, ok := a.srv.Handler.(chi.Routes)
	if !ok {
		t.Fatalf("the HTTP handler is a %T, not a chi router", a.srv.Handler)
	}
	inner, ok := (*a.routes.Load()).(chi.Routes)
	if !ok {
		t.Fatalf("the roles' handler is a %T, not a chi router", *a.routes.Load())
	}
	routes, err := openapitest.RouterRoutes(outer, inner)
	if err != nil {
		t.Fatal(err)
	}
	// The web pages (/gui, services/api/web) are HTML, not API operations.
	return slices.DeleteFunc(routes, func(r openapitest.Route) bool {
		return r.Path == auth.GUIPrefix || strings.HasPrefix(r.Path, auth.GUIPrefix+"/")
	})
}

// TestOpenAPIRoutes fails when the router of vigil all and the OpenAPI
// document (openapi/openapi.json) disagree on the set of (method, path),
// and says which routes are missing on which side.
func TestOpenAPIRoutes(t *testing.T) {
	a := startTest(t, testConfig(t, t.TempDir()), allRoles())
	served := servedRoutes(t, a)
	ops, err := openapitest.Operations(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	var documented []openapitest.Route
	var drafts []string
	for _, op := range ops {
		documented = append(documented, op.Route)
		if op.Draft {
			drafts = append(drafts, op.String())
		}
	}
	undocumented, unserved := openapitest.Diff(served, documented)
	var msg strings.Builder
	if len(undocumented) > 0 {
		fmt.Fprintf(&msg, "\nserved by vigil all but missing from openapi/openapi.json (document them):\n")
		for _, r := range undocumented {
			fmt.Fprintf(&msg, "  %s\n", r)
		}
	}
	if len(unserved) > 0 {
		fmt.Fprintf(&msg, "\nin openapi/openapi.json but not served by vigil all (add the route, or drop or fix the path):\n")
		for _, r := range unserved {
			draft := ""
			if slices.Contains(drafts, r.String()) {
				draft = " (x-vigil-draft)"
			}
			fmt.Fprintf(&msg, "  %s%s\n", r, draft)
		}
	}
	if msg.Len() > 0 {
		t.Errorf("the router and the OpenAPI document disagree:%s", msg.String())
	}
	var landed []string
	for _, d := range drafts {
		if !slices.ContainsFunc(unserved, func(r openapitest.Route) bool { return r.String() == d }) {
			landed = append(landed, d)
		}
	}
	if len(landed) > 0 {
		t.Logf("served operations still marked x-vigil-draft (check them against the handler, then drop the mark):\n  %s", strings.Join(landed, "\n  "))
	}
}

// TestOpenAPISecurity checks that each operation's security requirement in
// the document is the scope package auth enforces: none for the open
// endpoints, optional read for /metrics, and RequiredScope for the rest.
func TestOpenAPISecurity(t *testing.T) {
	ops, err := openapitest.Operations(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]bool{"/healthz": true, "/readyz": true, openapi.Path: true}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, op := range ops {
		var want [][]string
		switch {
		case open[op.Path]:
		case op.Path == "/metrics":
			want = [][]string{{}, {"read"}}
		default:
			path := param.ReplaceAllString(op.Path, "x")
			want = [][]string{{string(auth.RequiredScope(op.Method, path))}}
		}
		if fmt.Sprint(op.Security) != fmt.Sprint(want) {
			t.Errorf("%s: security %v in the document, want %v", op.Route, op.Security, want)
		}
	}
}

// TestOpenAPIExamples sends the document's example requests to vigil all,
// plus requests that must fail, and checks every answer (status, headers,
// body schema) against the document. Operations not served yet are
// TestOpenAPIRoutes' business and are skipped here.
func TestOpenAPIExamples(t *testing.T) {
	a := startTest(t, testConfig(t, t.TempDir()), allRoles())
	base := "http://" + a.HTTPAddr()
	checker := openapitest.NewChecker(t)
	hc := &http.Client{Transport: checker.Transport(t, nil), Timeout: 10 * time.Second}
	served := servedRoutes(t, a)
	send := func(method, path, contentType string, body []byte) int {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	n := 0
	for _, ex := range openapitest.Examples(openapitest.Load(t)) {
		if _, unserved := openapitest.Diff(served, []openapitest.Route{ex.Operation}); len(unserved) > 0 {
			continue
		}
		ct := ""
		if ex.Body != nil {
			ct = "application/json"
		}
		code := send(ex.Operation.Method, ex.Path, ct, ex.Body)
		t.Logf("%s %s → %d", ex.Operation.Method, ex.Path, code)
		n++
	}
	if n < 8 {
		t.Errorf("only %d example requests were sent; the document lost its examples?", n)
	}
	// Answers that are not the happy path: each must be documented too.
	for _, tt := range []struct {
		method, path, ct, body string
		code                   int
	}{
		{"POST", "/v1/pulses", "application/json", `{"service":"x","next_in":0}`, 400},
		{"POST", "/v1/pulses", "application/json", `{"service":"x","next_in":60,"color":"red"}`, 400},
		{"POST", "/v1/pulses", "text/plain", `{"service":"x","next_in":60}`, 415},
		{"POST", "/v1/pulses", "application/json", `[{"service":"x","next_in":60},{"service":"y","next_in":60}]`, 202},
		{"POST", "/v1/pulses", "application/x-ndjson", "{\"service\":\"x\",\"next_in\":60}\n{\"service\":\"y\",\"next_in\":60}\n", 202},
		{"POST", "/v1/alerts", "application/json", `{"message":"no title"}`, 400},
		{"GET", "/v1/services?limit=0", "", "", 400},
		{"GET", "/v1/services?status=sleeping", "", "", 400},
		{"GET", "/v1/services?status=up,down&limit=1", "", "", 200},
		{"GET", "/v1/services/no%20such%20service", "", "", 404},
		{"DELETE", "/v1/services/no%20such%20service", "", "", 404},
		{"POST", "/v1/events", "application/json", `{"service":"x","message":""}`, 400},
		{"POST", "/v1/events", "application/json", `[{"service":"x","message":"a","level":"info"},{"service":"y","message":"b","at":"2026-11-21T10:00:00+01:00","attrs":{"k":"v"}}]`, 202},
		{"GET", "/v1/events?message=(", "", "", 400},
		{"GET", "/v1/events?from=yesterday", "", "", 400},
		{"GET", "/v1/events?color=red", "", "", 400},
		{"GET", "/v1/events?service=back&service_exact=backup&level=warning&order=asc&limit=5", "", "", 200},
		{"GET", "/v1/alerts?kind=manual,down&from=0", "", "", 200},
		{"GET", "/v1/alerts?kind=sideways", "", "", 400},
		{"GET", "/v1/stream?types=nothing", "", "", 400},
		{"GET", "/v1/deliveries?status=lost", "", "", 400},
		{"GET", "/v1/deliveries?status=dead&channel=mail&limit=2", "", "", 200},
		{"GET", "/v1/silences?state=active", "", "", 200},
		{"GET", "/v1/silences?state=sleeping", "", "", 400},
		{"POST", "/v1/silences", "application/json", `{"matchers":[],"ends_at":"2099-01-01T00:00:00Z","created_by":"a","comment":"b"}`, 400},
		{"POST", "/v1/deadletters/zero/retry", "", "", 400},
		{"POST", "/v1/hosts/web-2/stats", "application/json", `{"at":"not a time"}`, 400},
		{"GET", "/v1/hosts/web-1/history", "", "", 400},
		{"GET", "/v1/hosts?limit=1", "", "", 200},
	} {
		if _, unserved := openapitest.Diff(served, []openapitest.Route{{Method: tt.method, Path: strings.Split(tt.path, "?")[0]}}); len(unserved) > 0 {
			continue
		}
		if code := send(tt.method, tt.path, tt.ct, []byte(tt.body)); code != tt.code {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, code, tt.code)
		}
	}
	// Lists the examples filled, once they show it (the indexes follow
	// their streams), so their items' schemas are checked too.
	// A service that goes down at once fills its history with a down alert.
	if code := send("POST", "/v1/pulses", "application/json", []byte(`{"service":"flip","next_in":0.001,"grace":0}`)); code != http.StatusAccepted {
		t.Errorf("POST /v1/pulses = %d", code)
	}
	for _, l := range []struct{ route, path string }{
		{"/v1/services", "/v1/services"},
		{"/v1/events", "/v1/events"},
		{"/v1/alerts", "/v1/alerts?kind=down"},
		{"/v1/hosts", "/v1/hosts"},
		{"/v1/silences", "/v1/silences"},
		{"/v1/services/{name}/history", "/v1/services/flip/history?order=asc"},
	} {
		path := l.path
		if _, unserved := openapitest.Diff(served, []openapitest.Route{{Method: "GET", Path: l.route}}); len(unserved) > 0 {
			continue
		}
		bustest.Eventually(t, func() error {
			resp := call(t, "GET", base+path, "", "")
			if resp.code != http.StatusOK || !strings.Contains(resp.body, `"items":[{`) {
				return fmt.Errorf("GET %s = %d %s, want a non-empty list", path, resp.code, resp.body)
			}
			return nil
		})
		if code := send("GET", path, "", nil); code != http.StatusOK {
			t.Errorf("GET %s = %d", path, code)
		}
	}
	if !slices.ContainsFunc(served, func(r openapitest.Route) bool { return r.Path == "/v1/stream" }) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/stream?types=events,alerts", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("GET /v1/stream = %d %s, want 200 text/event-stream as documented", resp.StatusCode, ct)
	}
}

// TestOpenAPIServed checks that /v1/openapi.json serves the embedded
// document with an ETag that revalidates.
func TestOpenAPIServed(t *testing.T) {
	a := startTest(t, testConfig(t, t.TempDir()), allRoles())
	url := "http://" + a.HTTPAddr() + openapi.Path
	resp := call(t, "GET", url, "", "")
	if resp.code != 200 || resp.body != string(openapi.JSON()) {
		t.Fatalf("GET %s = %d, %d bytes; want 200 and the embedded document", openapi.Path, resp.code, len(resp.body))
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", resp.header.Get("ETag"))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", r2.StatusCode)
	}
}
