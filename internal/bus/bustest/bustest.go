// Package bustest starts a real, embedded nats-server with JetStream for
// tests: a random client port, a temporary store, cleaned up with the test.
package bustest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil/internal/bus"
)

// Server is a running test server.
type Server struct {
	*bus.Embedded
	Dir string
}

// New starts a JetStream server on 127.0.0.1 with a random port and a store
// under t.TempDir(). It is shut down when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	return NewInDir(tb, tb.TempDir())
}

// NewInDir is New with a given store directory, to restart a server on the
// same data.
func NewInDir(tb testing.TB, dir string) *Server {
	tb.Helper()
	e, err := bus.StartEmbedded(bus.ServerConfig{Name: "test", DataDir: dir, Listen: "127.0.0.1:0"}, Logger(tb))
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	s := &Server{Embedded: e, Dir: dir}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// Stop shuts the server down now (it is safe to call twice).
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}

// Conn opens a TCP client connection, closed when the test ends.
func (s *Server) Conn(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a fresh connection.
func (s *Server) JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	js, err := bus.NewJetStream(s.Conn(tb))
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}

// Provision provisions the bus contract with one replica and returns its
// assets on a fresh connection.
func (s *Server) Provision(tb testing.TB) *bus.Assets {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := bus.Provision(ctx, s.JetStream(tb), bus.Config{Replicas: 1})
	if err != nil {
		tb.Fatalf("provision: %v", err)
	}
	return a
}

// Logger returns a logger that writes through tb.Log when -v is set and
// discards otherwise, so failing tests show context without noise.
func Logger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}
