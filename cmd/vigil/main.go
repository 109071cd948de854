// Command vigil is the vigil server and its command-line client.
//
// Server roles: vigil all (the default) runs every role with an embedded
// NATS server; vigil ingest, watchdog, notifier and api each run one role
// against an external NATS (--nats-url). User commands: vigil pulse, cancel,
// status and events talk to a running server's HTTP API. vigil version prints the
// versions; vigil <command> --help lists every option with its environment
// variable, YAML key and default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stopTimeout bounds a graceful shutdown.
const stopTimeout = 30 * time.Second

// run runs the command in args (without the program name) and returns the
// process exit code: 0 on success, 1 on a runtime failure, 2 on bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "all"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		printVersion(stdout)
		return 0
	case "pulse":
		return runPulse(ctx, args, stdout, stderr, getenv)
	case "cancel":
		return runCancel(ctx, args, stdout, stderr, getenv)
	case "status":
		return runStatus(ctx, args, stdout, stderr, getenv)
	case "events":
		return runEvents(ctx, args, stdout, stderr, getenv)
	case "token":
		return runToken(args, os.Stdin, stdout, stderr)
	case "nats":
		return runNATS(args, stdout, stderr)
	case "help":
		if len(args) > 0 {
			switch args[0] {
			case "pulse", "cancel", "status", "events", "token", "nats":
				return run(ctx, []string{args[0], "--help"}, getenv, stdout, stderr)
			}
			if roles, ok := serverRoles(args[0]); ok {
				printUsage(stdout, args[0], roles)
				return 0
			}
		}
		printCommands(stdout)
		return 0
	}
	roles, ok := serverRoles(cmd)
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n", cmd)
		printCommands(stderr)
		return 2
	}
	return serve(ctx, cmd, roles, args, getenv, stdout, stderr)
}

// serve runs the server command cmd until ctx ends or a role fails.
func serve(ctx context.Context, cmd string, roles, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(cmd, roles, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, cmd, roles)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\nRun 'vigil %s --help' for the options.\n", cmd, err, cmd)
		return 2
	}
	log := newLogger(cfg.Log, stderr)
	log.Debug("configuration", "config", cfg)
	a, err := startApp(ctx, cfg, roles, log)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			log.Info("vigil stopped before it was ready")
			return 0
		}
		log.Error("vigil failed to start", "err", err)
		return 1
	}
	werr := a.Wait()
	log.Info("vigil stopping")
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	serr := a.Stop(sctx)
	if werr != nil || serr != nil {
		log.Error("vigil failed", "err", errors.Join(werr, serr))
		return 1
	}
	log.Info("vigil stopped")
	return 0
}

// newLogger returns the process logger writing to w.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	level, err := parseLogLevel(c.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printCommands writes the list of commands.
func printCommands(w io.Writer) {
	fmt.Fprint(w, `vigil is a heartbeat monitor on NATS JetStream.

Usage: vigil [command] [flags]

Server commands:
  all        every role and an embedded NATS server in one process (the default)
  ingest     accept pulses, cancels and manual alerts (HTTP and NATS)
  watchdog   turn missed deadlines into down, recovered and gap alerts
  notifier   deliver alerts
  api        serve GET /v1/services

User commands (talk to a running server's HTTP API; --help for options):
  pulse      send a pulse: vigil pulse NAME --next-in 60s
  cancel     cancel a service: vigil cancel NAME
  status     a table of services and their status
  events     list events: vigil events --service RE --level error --from 2h;
             follow them: vigil events tail --service-exact X --level 3

Other:
  token      make an API token: vigil token create --name ci --scope read
  nats       NATS identities and TLS files: vigil nats users|agent|certs
  version    print the versions of vigil, Go and nats-server
  help       this list; vigil help COMMAND or vigil COMMAND --help for its options
`)
}

// printUsage writes the help of server command cmd: every option with its
// environment variable, YAML key and default.
func printUsage(w io.Writer, cmd string, roles []string) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("vigil "+cmd, flag.ContinueOnError)
	b := bind(fs, &cfg, cmd, roles)
	fmt.Fprintf(w, "Usage: vigil %s [flags]\n\n", cmd)
	if cmd == "all" {
		fmt.Fprint(w, "Runs every role (ingest, watchdog, notifier, api) in one process, with an\nembedded NATS server unless --nats-url is set. 'vigil help' lists the\nother commands.\n")
	} else {
		fmt.Fprintf(w, "Runs the %s role alone against an external NATS server.\n", cmd)
	}
	fmt.Fprint(w, "\nEach option is also read from its environment variable and from the YAML\nfile given by --config; precedence: flags > environment > file > defaults.\n")
	b.PrintOptions(w)
}
