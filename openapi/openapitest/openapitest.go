// Package openapitest checks vigil's HTTP routes and answers against the
// OpenAPI document of package openapi: which (method, path) pairs the
// document and a chi router each have (Diff), and whether a request and
// its answer match the document's parameters, bodies and schemas
// (Checker, Transport). It uses github.com/getkin/kin-openapi, which reads
// OpenAPI 3.1 and validates its schemas as JSON Schema 2020-12; only tests
// import this package.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil/openapi"
)

// Route is one method and path pattern ("/v1/services/{name}").
type Route struct {
	Method, Path string
}

func (r Route) String() string { return r.Method + " " + r.Path }

// key is r with every path placeholder written "{}", so that
// "/v1/hosts/{id}" (document) and "/v1/hosts/{host}" or
// "/v1/deadletters/{seq:[0-9]+}" (chi) compare equal.
func (r Route) key() Route { return Route{r.Method, placeholder.ReplaceAllString(r.Path, "{}")} }

var placeholder = regexp.MustCompile(`\{[^/{}]*(\{[^/{}]*\}[^/{}]*)*\}`)

// Operation is one operation of the document: its route, operationId,
// the scopes of each alternative security requirement (an empty list
// among them means "no token needed"), and whether it is marked
// x-vigil-draft (written before its handler).
type Operation struct {
	Route
	ID       string
	Security [][]string
	Draft    bool
}

// Operations returns the operations of the OpenAPI document doc (JSON) in
// path and method order. A plain JSON parse: it fails only on JSON that
// does not have the document's shape.
func Operations(doc []byte) ([]Operation, error) {
	var d struct {
		Security []map[string][]string `json:"security"`
		Paths    map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	var out []Operation
	for path, item := range d.Paths {
		for method, raw := range item {
			m := strings.ToUpper(method)
			switch m {
			case "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE":
			default:
				continue // parameters, summary, …
			}
			var o struct {
				ID       string                 `json:"operationId"`
				Security *[]map[string][]string `json:"security"`
				Draft    any                    `json:"x-vigil-draft"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, fmt.Errorf("openapi document: %s %s: %w", m, path, err)
			}
			sec := d.Security
			if o.Security != nil {
				sec = *o.Security
			}
			op := Operation{Route: Route{m, path}, ID: o.ID, Draft: o.Draft != nil}
			for _, req := range sec {
				scopes := []string{}
				for _, s := range req {
					scopes = append(scopes, s...)
				}
				op.Security = append(op.Security, scopes)
			}
			out = append(out, op)
		}
	}
	slices.SortFunc(out, func(a, b Operation) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out, nil
}

// RouterRoutes returns every route of the chi routers rs (chi.Walk), in
// path and method order.
func RouterRoutes(rs ...chi.Routes) ([]Route, error) {
	var out []Route
	for _, r := range rs {
		err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			out = append(out, Route{method, strings.TrimSuffix(route, "/*")})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk router: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return slices.Compact(out), nil
}

// Diff compares the routes a router serves with those a document
// describes, placeholders' names aside: undocumented are served but not in
// the document, unserved are in the document but not served.
func Diff(served, documented []Route) (undocumented, unserved []Route) {
	in := func(rs []Route, r Route) bool {
		return slices.ContainsFunc(rs, func(x Route) bool { return x.key() == r.key() })
	}
	for _, r := range served {
		if !in(documented, r) {
			undocumented = append(undocumented, r)
		}
	}
	for _, r := range documented {
		if !in(served, r) {
			unserved = append(unserved, r)
		}
	}
	return undocumented, unserved
}

// Load parses the embedded document with kin-openapi and validates it
// (structure, references, schemas, examples), failing tb on any error.
func Load(tb testing.TB) *openapi3.T {
	tb.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.JSON())
	if err != nil {
		tb.Fatalf("load openapi document: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		tb.Fatalf("openapi document is invalid: %v", err)
	}
	return doc
}

// Checker checks requests and answers against the document.
type Checker struct {
	router routers.Router
}

// NewChecker returns a checker of the embedded document (Load).
func NewChecker(tb testing.TB) *Checker {
	tb.Helper()
	r, err := legacy.NewRouter(Load(tb))
	if err != nil {
		tb.Fatalf("openapi router: %v", err)
	}
	return &Checker{router: r}
}

// ErrNoRoute is returned by Check for a request the document has no
// operation for.
var ErrNoRoute = errors.New("no operation in the openapi document")

// Check validates a request (with its body reqBody) and the answer's
// status, header and body against the document: the answer must have a
// status the operation lists and match the schema of its content type;
// the request must match the operation's parameters and body unless the
// server refused it (4xx), since a refused request is often invalid on
// purpose. It returns an error wrapping ErrNoRoute when the document has
// no operation for the request. Security requirements are not checked
// (package auth does that).
func (c *Checker) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	ctx := context.Background()
	// The document's server is "/": match on the path alone.
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host, r.Host = "", "", ""
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", req.Method, req.URL.Path, ErrNoRoute, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	var errs []error
	if status < 400 && (req.Header.Get("Content-Type") == "" || isJSON(req.Header.Get("Content-Type"))) {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("the server accepted a request the document calls invalid: %w", err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("answer %d %s: %w", status, bytes.TrimSpace(body), err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s %s (operation %s): %w", req.Method, req.URL.RequestURI(), route.Operation.OperationID, err)
	}
	return nil
}

// Example is a request built from the document's examples: the
// operation's route, the path with its parameters filled in (and required
// query parameters added), and the JSON body example, if any.
type Example struct {
	Operation Route
	Path      string
	Body      []byte
}

// Examples returns one request per operation of doc that has an example
// for every required parameter and, when it takes a JSON body, a body
// example; writes (POST, PUT, PATCH) first, then reads, then DELETE, so
// reads find what the writes stored. Operations answering only
// text/event-stream are left out.
func Examples(doc *openapi3.T) []Example {
	rank := map[string]int{"POST": 0, "PUT": 0, "PATCH": 0, "GET": 1, "HEAD": 1, "DELETE": 2}
	var out []Example
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ex, ok := example(path, item, op)
			if ok {
				ex.Operation = Route{method, path}
				out = append(out, ex)
			}
		}
	}
	slices.SortFunc(out, func(a, b Example) int {
		if d := rank[a.Operation.Method] - rank[b.Operation.Method]; d != 0 {
			return d
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out
}

func example(path string, item *openapi3.PathItem, op *openapi3.Operation) (Example, bool) {
	if op.Responses != nil {
		for _, r := range op.Responses.Map() {
			if r.Value != nil && r.Value.Content.Get("text/event-stream") != nil {
				return Example{}, false
			}
		}
	}
	var query []string
	for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
		pv := p.Value
		if pv == nil || !pv.Required && pv.In != openapi3.ParameterInPath {
			continue
		}
		v := pv.Example
		if v == nil && pv.Schema != nil && pv.Schema.Value != nil && len(pv.Schema.Value.Examples) > 0 {
			v = pv.Schema.Value.Examples[0]
		}
		if v == nil {
			return Example{}, false
		}
		s := fmt.Sprint(v)
		switch pv.In {
		case openapi3.ParameterInPath:
			path = strings.ReplaceAll(path, "{"+pv.Name+"}", url.PathEscape(s))
		case openapi3.ParameterInQuery:
			query = append(query, url.QueryEscape(pv.Name)+"="+url.QueryEscape(s))
		default:
			return Example{}, false // required headers: none so far
		}
	}
	if len(query) > 0 {
		path += "?" + strings.Join(query, "&")
	}
	ex := Example{Path: path}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		mt := rb.Value.Content.Get("application/json")
		if mt == nil || mt.Example == nil {
			return Example{}, false
		}
		b, err := json.Marshal(mt.Example)
		if err != nil {
			return Example{}, false
		}
		ex.Body = b
	}
	return ex, true
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt) == "application/json"
}

// Transport returns an http.RoundTripper that sends through base
// (http.DefaultTransport when nil) and checks each exchange with c,
// reporting mismatches with tb.Errorf. Requests the document has no
// operation for are reported too. Streams (text/event-stream) are passed
// through unchecked.
func (c *Checker) Transport(tb testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		var reqBody []byte
		if req.Body != nil {
			b, err := io.ReadAll(req.Body)
			_ = req.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("read request body: %w", err)
			}
			reqBody = b
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(b))
		}
		resp, err := base.RoundTrip(req)
		if err != nil || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read answer: %w", err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err := c.Check(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
			tb.Errorf("openapi: %v", err)
		}
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
