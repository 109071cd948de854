package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/agent/collect"
	"github.com/vigil-monitor/vigil/agent/config"
	"github.com/vigil-monitor/vigil/agent/desktop"
	"github.com/vigil-monitor/vigil/agent/install"
	"github.com/vigil-monitor/vigil/agent/toast"
	"github.com/vigil-monitor/vigil/agent/transport"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// commands lists every command with its one-line help.
var commands = []struct{ name, help string }{
	{"run", "send this host's stats and heartbeat every interval (the service runs this)"},
	{"check", "verify the server address and credentials without storing anything"},
	{"cpu", "print the cpu section (count, frequency in MHz, percent used)"},
	{"memory", "print the memory section (total, available, used, free in bytes; percent used)"},
	{"disks", "print the disks section (device, file system, mount point, total/used/free bytes)"},
	{"processes", "print the processes section (pid, name, user)"},
	{"network", "print the network section (interface, IPv4 address, netmask, bytes sent/received)"},
	{"generate-system-id", "print this host's system id, creating it in the state directory if needed (--new replaces it)"},
	{"toast", "show the toasts sent to --toast-name as desktop notifications"},
	{"install", "install run (or toast, with --toast) as a system service (--user: a user service)"},
	{"uninstall", "remove the service install set up"},
	{"version", "print the version"},
	{"help", "print this help, or a command's options"},
}

// run runs the command in args and returns the exit code: 0 on success, 1
// on a failure, 2 on bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printCommands(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		printVersion(stdout)
		return 0
	case "help", "-h", "--help":
		if len(args) > 0 && known(args[0]) {
			printUsage(stdout, args[0])
			return 0
		}
		printCommands(stdout)
		return 0
	}
	if !known(cmd) {
		fmt.Fprintf(stderr, "vigil-agent: unknown command %q\n\n", cmd)
		printCommands(stderr)
		return 2
	}
	c := &command{name: cmd, stdout: stdout, stderr: stderr, getenv: getenv}
	if code, done := c.parse(args); done {
		return code
	}
	var err error
	switch cmd {
	case "cpu", "memory", "disks", "processes", "network":
		err = c.section(ctx)
	case "generate-system-id":
		err = c.generateID()
	case "run":
		err = c.run(ctx)
	case "check":
		var ok bool
		ok, err = c.check(ctx)
		if err == nil && !ok {
			return 1
		}
	case "toast":
		err = c.toast(ctx)
	case "install", "uninstall":
		err = c.install()
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil-agent %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func known(cmd string) bool {
	return slices.ContainsFunc(commands, func(c struct{ name, help string }) bool { return c.name == cmd })
}

// command is one invocation: its configuration and its own flags.
type command struct {
	name           string
	cfg            config.Config
	fs             *flag.FlagSet
	json, renew    bool
	user, forToast bool
	stdout, stderr io.Writer
	getenv         func(string) string
	log            *slog.Logger
}

// parse reads the flags, environment and file. done reports that the
// command ends here with code (help, or an error already printed).
func (c *command) parse(args []string) (code int, done bool) {
	c.cfg = config.Default()
	c.fs = flag.NewFlagSet("vigil-agent "+c.name, flag.ContinueOnError)
	b := config.Bind(c.fs, &c.cfg)
	c.ownFlags()
	err := config.Load(b, &c.cfg, args, c.getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(c.stdout, c.name)
		return 0, true
	}
	if err == nil && c.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", c.fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "vigil-agent %s: %v\n(vigil-agent help %s lists the options)\n", c.name, err, c.name)
		return 2, true
	}
	level, _ := config.ParseLogLevel(c.cfg.Log.Level)
	hopts := &slog.HandlerOptions{Level: level}
	if c.cfg.Log.Format == "json" {
		c.log = slog.New(slog.NewJSONHandler(c.stderr, hopts))
	} else {
		c.log = slog.New(slog.NewTextHandler(c.stderr, hopts))
	}
	return 0, false
}

// ownFlags defines the flags only some commands have.
func (c *command) ownFlags() {
	switch c.name {
	case "cpu", "memory", "disks", "processes", "network":
		c.fs.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	case "generate-system-id":
		c.fs.BoolVar(&c.renew, "new", false, "replace the stored id with a new one")
	case "install", "uninstall":
		c.fs.BoolVar(&c.forToast, "toast", false, "the toast client (vigil-agent-toast, a user service) instead of the agent")
		c.fs.BoolVar(&c.user, "user", false, "a per-user service (systemd --user, ~/Library/LaunchAgents) instead of a system one")
	}
}

// section prints one section of a fresh snapshot.
func (c *command) section(ctx context.Context) error {
	col := collect.New(collect.Options{Processes: c.name == "processes", Agent: version()})
	var v any
	var err error
	switch c.name {
	case "cpu":
		v, err = col.CPU(ctx)
	case "memory":
		v, err = collect.Memory(ctx)
	case "disks":
		v, err = collect.Disks(ctx)
	case "processes":
		v, err = col.Processes(ctx)
	case "network":
		v, err = collect.Network(ctx)
	}
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return printTable(c.stdout, v)
}

func (c *command) generateID() error {
	if c.cfg.SystemID != "" && !c.renew {
		fmt.Fprintln(c.stdout, c.cfg.SystemID)
		return nil
	}
	id, err := config.StoredSystemID(c.cfg.StateDir, c.renew)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, id)
	return nil
}

// sender opens the configured transport. Over NATS, replies come on
// inbox (natsconn.HostInbox, ToastInbox), the only inbox a least-privilege
// identity may read.
func (c *command) sender(id, inbox string) (transport.Sender, *transport.NATS, error) {
	if c.cfg.Transport == "http" {
		h, err := transport.NewHTTP(transport.HTTPConfig{URL: c.cfg.HTTP.URL, Token: c.cfg.HTTP.Token, TLSCA: c.cfg.HTTP.TLSCA, Timeout: c.cfg.Timeout})
		return h, nil, err
	}
	n := c.cfg.NATS
	t, err := transport.DialNATS(transport.NATSConfig{
		URL: n.URL, Name: "vigil-agent " + id,
		Auth: natsconn.Auth{
			CredsFile: n.Creds, NKeyFile: n.NKey, User: n.User, Password: n.Password, Token: n.Token,
			TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey,
			InboxPrefix: inbox,
		},
		Timeout: c.cfg.Timeout,
	}, c.log)
	return t, t, err
}

func (c *command) run(ctx context.Context) error {
	id, err := c.cfg.ID()
	if err != nil {
		return err
	}
	c.log.Debug("configuration", "config", c.cfg)
	s, _, err := c.sender(id, natsconn.HostInbox(id))
	if err != nil {
		return err
	}
	defer s.Close()
	a, err := agent.New(c.cfg, id, agent.Deps{
		Sender:    s,
		Collector: collect.New(collect.Options{Processes: c.cfg.Processes, Agent: version()}),
		Log:       c.log,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	return install.Run(ctx, c.serviceOptions(), a.Run)
}

// check prints one line per probe and reports whether all passed.
func (c *command) check(ctx context.Context) (bool, error) {
	id, err := c.cfg.ID()
	if err != nil {
		return false, err
	}
	url := c.cfg.NATS.URL
	if c.cfg.Transport == "http" {
		url = c.cfg.HTTP.URL
	}
	fmt.Fprintf(c.stdout, "system id  %s\ntransport  %s %s\n\n", id, c.cfg.Transport, natsconn.RedactURL(url))
	s, _, err := c.sender(id, natsconn.HostInbox(id))
	if err != nil {
		return false, err
	}
	defer s.Close()
	r := s.Check(ctx, id)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, p := range r {
		mark := "ok"
		switch {
		case p.Info:
			mark = "info"
		case !p.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, p.Name, p.Detail)
	}
	if err := tw.Flush(); err != nil {
		return false, err
	}
	return r.OK(), nil
}

func (c *command) toast(ctx context.Context) error {
	if c.cfg.Toast.Name == "" {
		return errors.New("--toast-name is required: the desktop name alerts use as their toast target")
	}
	show, err := desktop.New()
	if err != nil {
		return err
	}
	defer show.Close()
	cl, err := toast.New(toast.Config{Name: c.cfg.Toast.Name, MaxAge: c.cfg.Toast.MaxAge, StateDir: c.cfg.StateDir}, show, c.log, nil)
	if err != nil {
		return err
	}
	if c.cfg.Transport == "http" {
		hc, err := transport.NewHTTPClient(c.cfg.HTTP.TLSCA, 0)
		if err != nil {
			return err
		}
		return cl.RunHTTP(ctx, c.cfg.HTTP.URL, c.cfg.HTTP.Token, hc)
	}
	_, n, err := c.sender("toast "+c.cfg.Toast.Name, natsconn.ToastInbox(c.cfg.Toast.Name))
	if err != nil {
		return err
	}
	defer n.Close()
	js, err := jetstream.New(n.Conn())
	if err != nil {
		return err
	}
	// The consumer needs JetStream: retry until the server answers.
	for {
		err := cl.RunNATS(ctx, js)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		c.log.Warn("toast client cannot follow its subject yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

// serviceOptions names the service of this command.
func (c *command) serviceOptions() install.Options {
	o := install.Options{Name: "vigil-agent", Description: "vigil host agent: this host's stats and heartbeat to vigil", User: c.user}
	if c.forToast || c.name == "toast" {
		o.Name, o.Description, o.User = "vigil-agent-toast", "vigil desktop toasts", true
	}
	return o
}

func (c *command) install() error {
	o := c.serviceOptions()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	o.Executable = exe
	o.Args = []string{"run"}
	if c.forToast {
		o.Args = []string{"toast"}
		if c.cfg.Toast.Name == "" {
			return errors.New("--toast-name is required with --toast")
		}
	}
	// The service runs with the options given here: the flags set on this
	// command line, a config file by its absolute path.
	var names []string
	c.fs.Visit(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		if name == "toast" || name == "user" {
			continue
		}
		v := c.fs.Lookup(name).Value.String()
		if name == "config" || name == "state-dir" || isFileFlag(name) {
			if abs, err := filepath.Abs(v); err == nil {
				v = abs
			}
		}
		o.Args = append(o.Args, "--"+name+"="+v)
	}
	if c.name == "uninstall" {
		if err := install.Uninstall(o); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "removed service %s\n", o.Name)
		return nil
	}
	if err := install.Install(o); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "installed service %s (%s): %s %s\n%s\n", o.Name, install.Platform(o), exe, strings.Join(o.Args, " "), startHint(o))
	return nil
}

// isFileFlag reports whether flag name names a credentials or TLS file,
// which the service must find by its absolute path.
func isFileFlag(name string) bool {
	switch name {
	case "nats-creds", "nats-nkey", "nats-tls-ca", "nats-tls-cert", "nats-tls-key", "http-tls-ca":
		return true
	}
	return false
}

// startHint tells how to start the installed service.
func startHint(o install.Options) string {
	switch install.Platform(o) {
	case "linux-systemd":
		if o.User {
			return "start it with: systemctl --user start " + o.Name
		}
		return "start it with: systemctl start " + o.Name
	case "darwin-launchd":
		return "it starts at the next login or boot, or now with: launchctl start " + o.Name
	case "windows-service":
		return "start it with: sc start " + o.Name
	}
	return "start it with your service manager"
}

func printCommands(w io.Writer) {
	fmt.Fprint(w, "Usage: vigil-agent <command> [flags]\n\nvigil's host agent: this host's stats, heartbeat and threshold alerts to vigil,\nand the desktop client of vigil's toasts.\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.help)
	}
	_ = tw.Flush()
	fmt.Fprint(w, "\n'vigil-agent help <command>' lists a command's options.\n")
}

func printUsage(w io.Writer, cmd string) {
	cfg := config.Default()
	fs := flag.NewFlagSet("vigil-agent "+cmd, flag.ContinueOnError)
	b := config.Bind(fs, &cfg)
	c := &command{name: cmd, fs: fs}
	c.ownFlags()
	fmt.Fprintf(w, "Usage: vigil-agent %s [flags]\n\n", cmd)
	for _, x := range commands {
		if x.name == cmd {
			fmt.Fprintf(w, "%s.\n", strings.ToUpper(x.help[:1])+x.help[1:])
		}
	}
	fmt.Fprint(w, "\nEach option is also read from its environment variable and from the YAML\nfile given by --config; precedence: flags > environment > file > defaults.\nThreshold rules are set in the file (thresholds:).\n")
	b.PrintOptions(w)
	listed := map[string]bool{}
	for _, o := range b.Opts {
		listed[o.Name] = true
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if listed[f.Name] {
			return
		}
		if first {
			fmt.Fprintf(w, "\nCommand %s:\n", cmd)
			first = false
		}
		fmt.Fprintf(w, "  --%s\n      %s\n", f.Name, f.Usage)
	})
}

// version returns the main module's version and VCS revision.
func version() string {
	v, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if rev != "" {
		v += " " + rev
	}
	return v
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "vigil-agent %s\n%s %s/%s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
