package legacy_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/internal/stacktest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

// stack is a running vigil (ingest, api and watchdog on a real embedded
// JetStream) and the Backend the legacy surfaces use.
type stack struct {
	be  *legacy.Backend
	api http.Handler
}

func newStack(t *testing.T) *stack {
	t.Helper()
	be := backend(t, stacktest.WithWatchdog())
	return &stack{be: be, api: be.API}
}

// backend runs the real ingest and api roles (stacktest.Start with opts)
// for the test, benchmark or fuzz run and returns the legacy Backend.
func backend(tb testing.TB, opts ...stacktest.Option) *legacy.Backend {
	tb.Helper()
	st := stacktest.Start(tb, opts...)
	return &legacy.Backend{Intake: st.Ingest, API: st.Router, Leases: st.Assets.Leases}
}

// do sends a request with the given headers (names as written, so their
// casing is what the client sends) and returns the status, headers and body.
func do(t *testing.T, method, url string, hdr [][2]string, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}
