package openapitest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil/openapi"
)

func TestDiff(t *testing.T) {
	rt := chi.NewRouter()
	h := func(http.ResponseWriter, *http.Request) {}
	rt.Get("/v1/services/{name}", h)
	rt.Post("/v1/deadletters/{seq:[0-9]+}/retry", h)
	rt.Get("/v1/only-served", h)
	rt.Route("/v1/hosts", func(r chi.Router) { r.Get("/{host}", h) })
	served, err := RouterRoutes(rt)
	if err != nil {
		t.Fatal(err)
	}
	documented := []Route{
		{"GET", "/v1/services/{service}"},
		{"POST", "/v1/deadletters/{seq}/retry"},
		{"GET", "/v1/hosts/{id}"},
		{"DELETE", "/v1/services/{name}"},
	}
	undocumented, unserved := Diff(served, documented)
	if diff := cmp.Diff([]Route{{"GET", "/v1/only-served"}}, undocumented); diff != "" {
		t.Errorf("undocumented (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Route{{"DELETE", "/v1/services/{name}"}}, unserved); diff != "" {
		t.Errorf("unserved (-want +got):\n%s", diff)
	}
}

func TestOperations(t *testing.T) {
	ops, err := Operations([]byte(`{
		"security": [{"bearer": ["read"]}],
		"paths": {
			"/a": {"summary": "x", "get": {"operationId": "getA"}, "post": {"operationId": "postA", "security": [{"bearer": ["write"]}], "x-vigil-draft": "later"}},
			"/open": {"get": {"operationId": "open", "security": []}}
		}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Operation{
		{Route: Route{"GET", "/a"}, ID: "getA", Security: [][]string{{"read"}}},
		{Route: Route{"POST", "/a"}, ID: "postA", Security: [][]string{{"write"}}, Draft: true},
		{Route: Route{"GET", "/open"}, ID: "open"},
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("Operations mismatch (-want +got):\n%s", diff)
	}
}

// TestDocument loads and validates the embedded document and checks that
// every operation has a unique operationId.
func TestDocument(t *testing.T) {
	doc := Load(t)
	ops, err := Operations(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]Route{}
	for _, op := range ops {
		if op.ID == "" {
			t.Errorf("%s has no operationId", op.Route)
		}
		if prev, ok := ids[op.ID]; ok {
			t.Errorf("operationId %s of %s is also %s's", op.ID, op.Route, prev)
		}
		ids[op.ID] = op.Route
	}
	if n := len(doc.Paths.Map()); n == 0 {
		t.Error("the document has no paths")
	}
}

// TestChecker checks the checker itself against a stub that breaks the
// document in known ways.
func TestChecker(t *testing.T) {
	c := NewChecker(t)
	check := func(method, target, reqBody string, status int, body string) error {
		req := httptest.NewRequest(method, target, strings.NewReader(reqBody))
		if reqBody != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		h := http.Header{"Content-Type": {"application/json"}}
		return c.Check(req, []byte(reqBody), status, h, []byte(body))
	}
	good := `{"items":[{"name":"a","status":"up","since":"2026-01-01T00:00:00Z","last_pulse":"2026-01-01T00:00:00Z","deadline":"2026-01-01T00:01:00Z","next_in":60,"grace":0,"seq":1}]}`
	if err := check("GET", "/v1/services?limit=5", "", 200, good); err != nil {
		t.Errorf("a good answer: %v", err)
	}
	if err := check("GET", "/v1/services", "", 200, `{"items":[{"name":"a"}]}`); err == nil {
		t.Error("an answer missing required fields passed")
	}
	if err := check("GET", "/v1/services", "", 200, `{"items":[],"extra":1}`); err == nil {
		t.Error("an answer with an undocumented field passed")
	}
	if err := check("GET", "/v1/services", "", 418, `{"error":"teapot"}`); err == nil {
		t.Error("an undocumented status passed")
	}
	if err := check("POST", "/v1/pulses", `{"service":"a","next_in":-1}`, 400, `{"error":"next_in: must be > 0","field":"next_in"}`); err != nil {
		t.Errorf("a refused invalid request: %v", err)
	}
	if err := check("POST", "/v1/pulses", `{"service":"a","next_in":-1}`, 202, `{"accepted":1,"duplicates":0}`); err == nil {
		t.Error("an accepted request the document calls invalid passed")
	}
	if err := check("GET", "/v1/nothing", "", 404, `{"error":"not found"}`); !errors.Is(err, ErrNoRoute) {
		t.Errorf("an undocumented route: %v, want ErrNoRoute", err)
	}
}
