package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGatewayRoutesWritesToIngestAndTheRestToAPI(t *testing.T) {
	backend := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, name+" "+r.Method+" "+r.URL.RequestURI()+" xff="+r.Header.Get("X-Forwarded-For"))
		}))
	}
	in, api := backend("ingest"), backend("api")
	defer in.Close()
	defer api.Close()
	gw, err := newGateway(strings.TrimPrefix(in.URL, "http://"), strings.TrimPrefix(api.URL, "http://"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1/pulses", "ingest"},
		{"POST", "/v1/events", "ingest"},
		{"POST", "/v1/alerts", "ingest"},
		{"POST", "/v1/hosts/web-1/stats", "ingest"},
		{"DELETE", "/v1/services/db", "ingest"},
		{"GET", "/v1/services/db", "api"},
		{"GET", "/v1/events?service=db", "api"},
		{"POST", "/v1/silences", "api"},
		{"GET", "/gui/", "api"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		want := tc.want + " " + tc.method + " " + tc.path + " xff=127.0.0.1"
		if string(body) != want {
			t.Errorf("%s %s reached %q, want %q", tc.method, tc.path, body, want)
		}
	}
}

func TestGatewayAnswers502WhenNoReplicaIsUp(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	gw, err := newGateway(addr, addr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/pulses", strings.NewReader("{}")))
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), `"error"`) || rec.Header().Get("Retry-After") == "" {
		t.Errorf("got %d %q, want a 502 JSON error with Retry-After", rec.Code, rec.Body)
	}
}
