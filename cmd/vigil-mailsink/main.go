// Command vigil-mailsink is a development mail catcher for the compose stack:
// an SMTP server (RFC 5321, on github.com/emersion/go-smtp) that accepts every
// message without authentication, keeps the newest ones in memory, and lists
// them on a web page and a JSON endpoint. It is not part of vigil's roles and
// never relays anything.
//
//	vigil-mailsink [--smtp-addr :1025] [--http-addr :8025] [--keep 1000] [--max-bytes 1048576]
//
// HTTP: GET / (HTML list, newest first), GET /api/messages (JSON, newest
// first), DELETE /api/messages (forget everything), GET /healthz.
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

	"github.com/emersion/go-smtp"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-mailsink:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("vigil-mailsink", flag.ContinueOnError)
	smtpAddr := fs.String("smtp-addr", envOr("MAILSINK_SMTP_ADDR", ":1025"), "SMTP listen address (env MAILSINK_SMTP_ADDR)")
	httpAddr := fs.String("http-addr", envOr("MAILSINK_HTTP_ADDR", ":8025"), "HTTP listen address (env MAILSINK_HTTP_ADDR)")
	keep := fs.Int("keep", 1000, "messages kept in memory; the oldest go first")
	maxBytes := fs.Int64("max-bytes", 1<<20, "largest message accepted, in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	box := newMailbox(*keep)
	s := smtp.NewServer(backend{box: box, log: log})
	s.Domain = "mailsink"
	s.MaxMessageBytes = *maxBytes
	s.MaxRecipients = 100
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	sl, err := new(net.ListenConfig).Listen(ctx, "tcp", *smtpAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: box.routes(), ReadHeaderTimeout: 10 * time.Second}
	hl, err := new(net.ListenConfig).Listen(ctx, "tcp", *httpAddr)
	if err != nil {
		return err
	}
	log.Info("mailsink ready", "smtp_addr", sl.Addr().String(), "http_addr", hl.Addr().String())
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(sl) }()
	go func() { errc <- hs.Serve(hl) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = errors.Join(hs.Shutdown(sctx), s.Shutdown(sctx))
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
