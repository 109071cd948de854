package api_test

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/api"
)

// smallBuffers shrinks the send buffer of every accepted connection, so a
// client that stops reading blocks the server after a few KB rather than
// after the megabytes loopback autotuning allows.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestStreamDropsSlowClientNotFastOne runs two live streams over real TCP:
// one client sends its request and never reads, the other reads. Events
// of 4 KB are stored until the slow one is dropped (its queue of
// StreamBuffer messages full for StreamSlowTimeout); the fast one has
// every event, in order, and is still served afterwards.
func TestStreamDropsSlowClientNotFastOne(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.StreamBuffer = 16
		c.StreamSlowTimeout = time.Second // room for a loaded machine's fast client
	})
	e.run(t)
	rt := chi.NewRouter()
	e.role.Routes(rt)
	srv := httptest.NewUnstartedServer(rt)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)

	slow, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := fmt.Fprintf(slow, "GET /v1/stream?types=events HTTP/1.1\r\nHost: vigil\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, func() error {
		if got := gauge(t, e, "vigil_api_stream_clients"); got != 1 {
			return fmt.Errorf("%v stream clients, want the slow one", got)
		}
		return nil
	})
	fast := openSSE(t, srv.URL, "/v1/stream?types=events", "")

	pad := strings.Repeat("x", vigil.MaxMessageLen-16)
	sent := 0
	got := 0
	read := func() {
		for got < sent {
			m := fast.nextData()
			if want := fmt.Sprintf(`"message":"m%d `, got); !strings.Contains(m.data, want) {
				t.Fatalf("fast client's event %d = %.60s…, want %s", got, m.data, want)
			}
			got++
		}
	}
	bustest.Eventually(t, func() error {
		for range 10 {
			e.event(t, vigil.Event{Service: "s", Message: fmt.Sprintf("m%d %s", sent, pad), Received: t0})
			sent++
		}
		read()
		if counter(t, e, "vigil_api_stream_dropped_total") != 1 {
			return fmt.Errorf("slow client not dropped after %d events", sent)
		}
		return nil
	})
	e.event(t, vigil.Event{Service: "s", Message: fmt.Sprintf("m%d after the drop", sent), Received: t0})
	sent++
	read()
	if got := gauge(t, e, "vigil_api_stream_clients"); got != 1 {
		t.Errorf("vigil_api_stream_clients = %v after the drop, want 1 (the fast client)", got)
	}
}
