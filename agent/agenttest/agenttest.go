// Package agenttest runs what vigil-agent talks to, for its tests: vigil's
// real ingest and api roles on a real embedded NATS server with JetStream,
// the HTTP routes behind the real bearer-token guard. The NATS server can be
// stopped and restarted on the same store and port, to test the offline
// buffer.
package agenttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/ingest"
)

// Stack is a running vigil for an agent: NATSURL for the NATS transport,
// HTTPURL (with Token, scopes ingest and read) for the HTTP one, and the
// provisioned Assets on a connection of the test's own.
type Stack struct {
	NATSURL, HTTPURL string
	// Token may send (ingest scope) and read; IngestToken may only send.
	Token, IngestToken string
	Assets             *bus.Assets

	t        testing.TB
	dir      string
	listen   string
	mu       sync.Mutex
	srv      *bus.Embedded
	roleOpts []nats.Option
	conf     string
}

// Options change the stack: NATSConfig is the text of a nats-server
// configuration file (users, permissions) to run the server with, and
// RoleUser and RolePassword the user vigil's roles connect as then.
type Options struct {
	NATSConfig             string
	RoleUser, RolePassword string
}

// Start runs the stack until the test ends.
func Start(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	s := &Stack{t: tb, dir: tb.TempDir()}
	// A fixed port, so the agent's client reconnects to a restarted server.
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.listen = l.Addr().String()
	l.Close()
	conf := ""
	if opts.NATSConfig != "" {
		conf = filepath.Join(tb.TempDir(), "nats.conf")
		if err := os.WriteFile(conf, []byte(opts.NATSConfig), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	s.conf = conf
	s.start(conf)
	tb.Cleanup(s.StopNATS)
	s.NATSURL = "nats://" + s.listen

	s.roleOpts = []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
	if opts.RoleUser != "" {
		s.roleOpts = append(s.roleOpts, nats.UserInfo(opts.RoleUser, opts.RolePassword))
	}
	nc := s.conn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := bus.NewJetStream(nc)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := bus.Provision(ctx, js, bus.Config{Replicas: 1})
	if err != nil {
		tb.Fatal(err)
	}
	s.Assets = a
	reg := prometheus.NewRegistry()
	log := bustest.Logger(tb)
	in, err := ingest.New(ingest.DefaultConfig(), ingest.Deps{Conn: s.conn(), Assets: a, Log: log, Metrics: reg})
	if err != nil {
		tb.Fatal(err)
	}
	rd, err := api.New(api.DefaultConfig(), api.Deps{Conn: s.conn(), Assets: a, Log: log, Metrics: reg})
	if err != nil {
		tb.Fatal(err)
	}
	s.Token, s.IngestToken = secret(tb), secret(tb)
	guard, err := auth.NewGuard([]auth.Token{
		{Name: "agent", SHA256: auth.Hash(s.Token), Scopes: []auth.Scope{auth.ScopeIngest, auth.ScopeRead}},
		{Name: "sender", SHA256: auth.Hash(s.IngestToken), Scopes: []auth.Scope{auth.ScopeIngest}},
	}, log, reg)
	if err != nil {
		tb.Fatal(err)
	}
	rt := chi.NewRouter()
	in.Routes(rt)
	rd.Routes(rt)
	hs := httptest.NewServer(guard.Handler(rt))
	tb.Cleanup(hs.Close)
	s.HTTPURL = hs.URL

	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- in.Run(rctx) }()
	go func() { done <- rd.Run(rctx) }()
	tb.Cleanup(func() {
		stop()
		for range 2 {
			// A role whose server a test stopped may end with an error:
			// what agent tests check is the agent.
			if err := <-done; err != nil {
				tb.Logf("role Run: %v", err)
			}
		}
	})
	// Ready: ingest answers on its intake subjects, the api has caught up.
	probe := s.conn()
	bustest.Eventually(tb, func() error {
		if _, err := probe.Request(vigil.SubjectInPulse, []byte(`{}`), time.Second); err != nil {
			return fmt.Errorf("ingest intake: %w", err)
		}
		resp, err := http.Get(s.HTTPURL + "/v1/services?limit=1") //nolint:noctx // a test probe
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return errors.New("api catching up")
		}
		return nil
	})
	return s
}

func secret(tb testing.TB) string {
	s, err := auth.Generate(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *Stack) start(conf string) {
	s.t.Helper()
	e, err := bus.StartEmbedded(bus.ServerConfig{Name: "agenttest", DataDir: s.dir, Listen: s.listen, ConfigFile: conf}, bustest.Logger(s.t))
	if err != nil {
		s.t.Fatalf("start nats: %v", err)
	}
	s.mu.Lock()
	s.srv = e
	s.mu.Unlock()
}

// conn opens a role's TCP connection to the server, closed with the test;
// it reconnects across a restart.
func (s *Stack) conn() *nats.Conn {
	s.t.Helper()
	nc, err := nats.Connect(s.NATSURL, s.roleOpts...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}

// StopNATS shuts the NATS server down; it is safe to call twice.
func (s *Stack) StopNATS() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// RestartNATS starts the server again on the same store, port and
// configuration. The roles' connections reconnect by themselves.
func (s *Stack) RestartNATS() {
	s.t.Helper()
	s.start(s.conf)
}

// String names the stack in test logs.
func (s *Stack) String() string { return fmt.Sprintf("nats %s http %s", s.NATSURL, s.HTTPURL) }
