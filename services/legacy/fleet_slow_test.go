package legacy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
	"github.com/vigil-monitor/vigil/services/legacy"
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

// TestFleetDropsSlowClient: a fleet client that stops reading is
// disconnected once ClientBuffer frames wait for it, while a client that
// reads keeps getting every frame; memory per client stays bounded.
func TestFleetDropsSlowClient(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	for i := range 40 {
		name := fmt.Sprintf("service-%02d-%s", i, strings.Repeat("x", 100))
		if _, err := st.be.Intake.StorePulse(ctx, vigil.Pulse{Service: name, NextIn: vigil.Seconds(time.Hour)}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, func() error {
		ss, err := st.be.Services(ctx)
		if err == nil && len(ss) < 40 {
			err = fmt.Errorf("%d services listed", len(ss))
		}
		return err
	})
	f, err := legacy.NewFleet(legacy.FleetConfig{UnitEvery: 2 * time.Millisecond, MachineEvery: time.Hour, ClientBuffer: 64}, st.be, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Run(t, f.Run)
	srv := httptest.NewUnstartedServer(f)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	u := "ws" + strings.TrimPrefix(srv.URL, "http")

	// The slow client reads through a socket with a small receive buffer
	// and never calls Read until the end.
	slowHTTP := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}}
	slow, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: slowHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { _ = slow.CloseNow() })
	slow.SetReadLimit(1 << 20)
	fast := dial(t, u)
	fast.SetReadLimit(1 << 20)

	// 500 frames of over 4 KB each are far more than the small socket
	// buffers and ClientBuffer (64) hold, so the slow client must have been
	// dropped by the time the fast one has read them; a ClientBuffer of 64
	// lets the fast client lag 128 ms on a loaded machine.
	for range 500 {
		next(t, fast, "unit")
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rerr error
	for n := 0; rerr == nil; n++ {
		_, _, rerr = slow.Read(rctx)
		if n > 200 {
			t.Fatalf("the slow client read %d frames and is still connected, want it dropped", n)
		}
	}
	if errors.Is(rerr, context.DeadlineExceeded) {
		t.Fatal("the slow client was not disconnected")
	}
	if websocket.CloseStatus(rerr) != websocket.StatusPolicyViolation {
		t.Logf("slow client ended with %v", rerr) // a reset may beat the close frame
	}
	// The fast client is still served.
	next(t, fast, "unit")
}
