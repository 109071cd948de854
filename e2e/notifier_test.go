package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/notifier/webhook"
)

// hookSink is a slow webhook receiver: each request takes 20 ms, and it
// counts the 2xx answers it gave per X-Vigil-Delivery id.
type hookSink struct {
	mu     sync.Mutex
	got    map[string]int
	total  int
	change chan struct{}
}

func newHookSink(t *testing.T) (*hookSink, string) {
	t.Helper()
	h := &hookSink{got: map[string]int{}, change: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // the slow receiver; the test's kill comes while some wait here
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
		}
		id := r.Header.Get(webhook.HeaderDelivery)
		h.mu.Lock()
		h.got[id]++
		h.total++
		h.mu.Unlock()
		select {
		case h.change <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func (h *hookSink) counts() (distinct, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got), h.total
}

func (h *hookSink) waitFor(t *testing.T, what string, ok func(distinct, total int) bool) {
	t.Helper()
	deadline := time.After(2 * wait)
	for !ok(h.counts()) {
		select {
		case <-h.change:
		case <-deadline:
			d, n := h.counts()
			t.Fatalf("waited %v for %s (%d distinct, %d in all)", 2*wait, what, d, n)
		}
	}
}

// TestKill9NotifierMidDelivery stores 300 manual alerts for a slow webhook
// receiver, kills `vigil notifier` with SIGKILL while it delivers them,
// restarts it, and checks that every alert reaches the receiver. Duplicates
// can only come from requests the receiver answered after the kill or
// before the delivered mark was written, so there are at most as many as
// deliveries in flight (the workers); the test logs how many there were.
func TestKill9NotifierMidDelivery(t *testing.T) {
	const n, workers = 300, 16
	s := bustest.New(t)
	url := s.ClientURL()
	sink, hook := newHookSink(t)
	ing := start(t, "ingest", "--nats-url", url, "--http-addr", freeAddr(t))
	args := []string{
		"notifier", "--nats-url", url, "--http-addr", freeAddr(t),
		"--notifier-webhooks", "--notifier-send-timeout", "2s", "--notifier-workers", fmt.Sprint(workers),
		"--notifier-webhook-allowed-networks", "127.0.0.0/8", // the receiver is an httptest server
	}
	p := start(t, args...)
	for i := range n {
		body := fmt.Sprintf(`{"service":"job-%d","title":"job-%d failed","message":"exit 1","level":"error",`+
			`"owner":{"type":"webhook","target":%q}}`, i, i, hook+"/hook")
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, ing.http+"/v1/alerts", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /v1/alerts = %d", resp.StatusCode)
		}
	}
	sink.waitFor(t, "a third of the deliveries", func(d, _ int) bool { return d >= n/3 })
	p.kill()
	before, _ := sink.counts()
	start(t, args...)
	sink.waitFor(t, "every delivery after the restart", func(d, _ int) bool { return d >= n })
	distinct, total := sink.counts()
	t.Logf("%d alerts; %d delivered before kill -9; %d delivered in all, %d duplicates (bound: %d workers)",
		n, before, distinct, total-distinct, workers)
	if distinct != n {
		t.Errorf("%d distinct deliveries, want %d", distinct, n)
	}
	if dups := total - distinct; dups > workers {
		t.Errorf("%d duplicates, more than the %d deliveries that can be in flight", dups, workers)
	}
}
