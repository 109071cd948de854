//go:build !windows && !darwin

package toast_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/agent/agenttest"
	"github.com/vigil-monitor/vigil/agent/desktop"
	"github.com/vigil-monitor/vigil/agent/desktop/desktoptest"
	"github.com/vigil-monitor/vigil/agent/toast"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	notifiertoast "github.com/vigil-monitor/vigil/services/notifier/toast"
)

// desk is a desktop: a real session bus with a recording notification
// server, and the agent's D-Bus notifier on it.
func desk(t *testing.T) (desktop.Notifier, *desktoptest.Server) {
	t.Helper()
	addr := desktoptest.SessionBus(t)
	srv := desktoptest.Serve(t, addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	n, err := desktop.NewDBus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, srv
}

// run starts fn until the returned stop is called (or the test ends) and
// checks it returned nil.
func run(t *testing.T, fn func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("client returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("client did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// expect waits for the summaries in order, then checks nothing else came.
func expect(t *testing.T, srv *desktoptest.Server, summaries ...string) {
	t.Helper()
	for _, want := range summaries {
		select {
		case c := <-srv.Calls:
			if c.Summary != want {
				t.Fatalf("shown %q, want %q", c.Summary, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q was not shown", want)
		}
	}
}

func noMore(t *testing.T, srv *desktoptest.Server) {
	t.Helper()
	select {
	case c := <-srv.Calls:
		t.Fatalf("unexpected toast %+v", c)
	default:
	}
}

// Toasts the notifier's toast channel stores are shown once each, in
// order; those raised while the client is off are shown when it is back,
// except those older than the maximum age.
func TestNATSToastsResume(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	ch := notifiertoast.New(a.JS)
	n, srv := desk(t)
	now := time.Now()
	send := func(target, id, title string, level vigil.Level, at time.Time) {
		t.Helper()
		m := channel.Message{
			ID: id, Title: title, Body: "body of " + title, Level: level, URL: "https://vigil.example.com/s", At: at,
			Alerts: []vigil.Alert{{Service: "backup"}},
		}
		if err := ch.Send(context.Background(), target, m); err != nil {
			t.Fatal(err)
		}
	}
	cfg := toast.Config{Name: "desk1", MaxAge: time.Hour, StateDir: t.TempDir()}
	client := func() *toast.Client {
		c, err := toast.New(cfg, n, bustest.Logger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	js := s.JetStream(t)

	send("desk1", "a1", "raised before the first start", vigil.LevelError, now)
	send("desk1", "a0", "too old", vigil.LevelError, now.Add(-2*time.Hour))
	stop := run(t, func(ctx context.Context) error { return client().RunNATS(ctx, js) })
	expect(t, srv, "raised before the first start")
	send("desk2", "b1", "for another desktop", vigil.LevelError, now)
	send("desk1", "a2", "live", vigil.LevelCritical, now)
	expect(t, srv, "live")
	stop()

	send("desk1", "a3", "while off 1", vigil.LevelWarning, now)
	send("desk1", "a4", "too old while off", vigil.LevelWarning, now.Add(-3*time.Hour))
	send("desk1", "a5", "while off 2", vigil.LevelInfo, now)
	stop = run(t, func(ctx context.Context) error { return client().RunNATS(ctx, js) })
	expect(t, srv, "while off 1", "while off 2")
	send("desk1", "a6", "after the restart", vigil.LevelError, now)
	expect(t, srv, "after the restart")
	stop()
	noMore(t, srv)
}

func TestNATSToastShape(t *testing.T) {
	s := bustest.New(t)
	a := s.Provision(t)
	n, srv := desk(t)
	m := channel.Message{ID: "x1", Title: "db is down", Body: "no pulse since 12:00", Level: vigil.LevelCritical, URL: "https://vigil.example.com/services/db", At: time.Now()}
	if err := notifiertoast.New(a.JS).Send(context.Background(), "desk1", m); err != nil {
		t.Fatal(err)
	}
	c, err := toast.New(toast.Config{Name: "desk1", StateDir: t.TempDir()}, n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	js := s.JetStream(t)
	run(t, func(ctx context.Context) error { return c.RunNATS(ctx, js) })
	select {
	case got := <-srv.Calls:
		want := desktoptest.Call{App: "vigil", Summary: "db is down", Body: "no pulse since 12:00\nhttps://vigil.example.com/services/db", Urgency: 2, Timeout: -1, Actions: []string{}}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("Notify\n got %+v\nwant %+v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no toast")
	}
}

// Over HTTP the client follows the API's event stream and shows the alerts
// owned by its desktop, resuming after a restart with Last-Event-ID.
func TestHTTPToastsResume(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{})
	n, srv := desk(t)
	raise := func(target, title string) {
		t.Helper()
		b, _ := json.Marshal(vigil.ManualAlert{Service: "backup", Title: title, Message: "m", Level: vigil.LevelError, Owner: &vigil.Owner{Type: "toast", Target: target}})
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, st.HTTPURL+"/v1/alerts", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+st.Token)
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
	cfg := toast.Config{Name: "desk1", MaxAge: time.Hour, StateDir: t.TempDir()}
	start := func() func() {
		c, err := toast.New(cfg, n, bustest.Logger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return run(t, func(ctx context.Context) error { return c.RunHTTP(ctx, st.HTTPURL, st.Token, http.DefaultClient) })
	}
	stop := start()
	// The first connection starts at the end of the stream: wait until the
	// client saved its position, then raise.
	bustest.Eventually(t, func() error {
		raise("desk1", "probe")
		select {
		case c := <-srv.Calls:
			if c.Summary != "probe" {
				return fmt.Errorf("shown %q", c.Summary)
			}
			return nil
		case <-time.After(200 * time.Millisecond):
			return fmt.Errorf("not following yet")
		}
	})
	// Probes raised before the first was seen may still come: the stream
	// is ordered, so they all come before this marker.
	raise("desk1", "marker")
	for c := range srv.Calls {
		if c.Summary == "marker" {
			break
		}
	}
	raise("desk2", "for another desktop")
	raise("desk1", "live")
	expect(t, srv, "live")
	stop()
	raise("desk1", "while off")
	start()
	expect(t, srv, "while off")
	noMore(t, srv)

	c, err := toast.New(cfg, n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RunHTTP(context.Background(), st.HTTPURL, "vgl_wrong", http.DefaultClient); err == nil {
		t.Error("RunHTTP with a wrong token = nil, want the refusal")
	}
}

// A desktop's NATS user needs only the permissions docs/agent.md lists,
// and they can be scoped to its own toast subject.
func TestNATSToastPermissions(t *testing.T) {
	st := agenttest.Start(t, agenttest.Options{
		NATSConfig: `authorization {
  users = [
    {user: vigil, password: vigil}
    {user: desk1, password: desk1, permissions: {
      publish: ["$JS.API.STREAM.INFO.VIGIL_TOASTS", "$JS.API.CONSUMER.CREATE.VIGIL_TOASTS.*.vigil.toast.desk1",
                "$JS.API.CONSUMER.MSG.NEXT.VIGIL_TOASTS.>", "$JS.API.CONSUMER.DELETE.VIGIL_TOASTS.>"]
      subscribe: ["_INBOX.>"]
    }}
  ]
}`,
		RoleUser: "vigil", RolePassword: "vigil",
	})
	n, srv := desk(t)
	m := channel.Message{ID: "p1", Title: "scoped", Level: vigil.LevelError, At: time.Now()}
	if err := notifiertoast.New(st.Assets.JS).Send(context.Background(), "desk1", m); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(st.NATSURL, nats.UserInfo("desk1", "desk1"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := toast.New(toast.Config{Name: "desk1", StateDir: t.TempDir()}, n, bustest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, func(ctx context.Context) error { return c.RunNATS(ctx, js) })
	expect(t, srv, "scoped")
	// Another desktop's subject is refused.
	other, err := toast.New(toast.Config{Name: "desk2", StateDir: t.TempDir()}, n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := other.RunNATS(ctx, js); err == nil {
		t.Error("RunNATS for another desktop's subject = nil, want a permission error")
	}
}
