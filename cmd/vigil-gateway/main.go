// Command vigil-gateway is the front door of a scaled-out vigil (the compose
// stack): one published HTTP port in front of several ingest replicas and
// the api. Writes that ingest owns go to the ingest replicas, everything
// else (reads, the live stream, pages, silences, dead-letter retries) to the
// api. It is net/http/httputil's ReverseProxy with a dialer that spreads
// connections over every address the upstream's DNS name resolves to (Docker
// gives a replicated service one name with an address per replica) and skips
// addresses that refuse connections.
//
//	vigil-gateway [--listen :8080] [--ingest ingest:8080] [--api api:8080]
//
// Environment: VIGIL_GATEWAY_LISTEN, VIGIL_GATEWAY_INGEST, VIGIL_GATEWAY_API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-gateway:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("vigil-gateway", flag.ContinueOnError)
	listen := fs.String("listen", envOr("VIGIL_GATEWAY_LISTEN", ":8080"), "HTTP listen address")
	ingest := fs.String("ingest", envOr("VIGIL_GATEWAY_INGEST", "ingest:8080"), "ingest replicas, host:port (every address of host is used)")
	api := fs.String("api", envOr("VIGIL_GATEWAY_API", "api:8080"), "api replicas, host:port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	h, err := newGateway(*ingest, *api, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", *listen)
	if err != nil {
		return err
	}
	log.Info("gateway ready", "listen", l.Addr().String(), "ingest", *ingest, "api", *api)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
