package main

// The nats command makes what a hardened NATS deployment needs
// (docs/tls-and-identities.md): the users block of vigil's roles, an
// agent's nkey and permissions, and a private CA with server and client
// certificates. None of it talks to a server.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

func runNATS(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printNATSUsage(stdout)
		if len(args) == 0 {
			return cliExitUsage
		}
		return cliExitOK
	}
	var err error
	switch args[0] {
	case "users":
		err = runNATSUsers(args[1:], stdout, stderr)
	case "agent":
		err = runNATSAgent(args[1:], stdout, stderr)
	case "certs":
		err = runNATSCerts(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "vigil nats: unknown subcommand %q\n\n", args[0])
		printNATSUsage(stderr)
		return cliExitUsage
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return cliExitOK
	case errors.Is(err, errUsage):
		return cliExitUsage
	case err != nil:
		fmt.Fprintf(stderr, "vigil nats %s: %v\n", args[0], err)
		return cliExitError
	}
	return cliExitOK
}

// errUsage is a usage error already reported by the flag set.
var errUsage = errors.New("usage")

func printNATSUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  vigil nats users [--env | --nkeys DIR [--admin]] [--agent ID]...
      print a nats-server authorization block with one user per role
      (ingest, watchdog, notifier, api) and its least-privilege permissions:
      fresh random passwords; with --env references to the variables
      VIGIL_NATS_<ROLE>_PASSWORD of the server's environment; with --nkeys
      an nkey per role, its seed written to DIR/<role>.nk (--admin adds
      DIR/admin.nk, a user without limits for the nats CLI); each --agent
      adds the agent of host ID (seed DIR/agent-<ID>.nk, needs --nkeys)
  vigil nats agent --host ID [--toast NAME] [--alerts] [--nkey FILE]
      make an nkey for the agent of host ID, write its seed to FILE (mode
      0600; default ID.nk) and print the users entry that admits it: publish
      its own stats and pulses, read its own toasts, nothing else
  vigil nats certs --dir DIR [--hosts H,H] [--days N]
      make a private CA (reused if DIR has one) and a server and client
      certificate for the hosts: ca.pem, server.pem, server-key.pem,
      client.pem, client-key.pem

See docs/tls-and-identities.md.
`)
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

func runNATSUsers(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil nats users", flag.ContinueOnError)
	env := fs.Bool("env", false, "passwords are the variables VIGIL_NATS_<ROLE>_PASSWORD of the nats-server's environment instead of fresh random ones")
	dir := fs.String("nkeys", "", "`directory` to write an nkey seed per user to (mode 0600, replaced); users are nkeys, not passwords")
	admin := fs.Bool("admin", false, "with --nkeys: also an admin user without limits (admin.nk), for the nats CLI; keep it off the hosts")
	var agents []string
	fs.Func("agent", "also the agent of host `ID` (repeatable; needs --nkeys)", func(v string) error {
		agents = append(agents, v)
		return nil
	})
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *dir == "" && (*admin || len(agents) > 0) {
		fmt.Fprintln(stderr, "vigil nats users: --admin and --agent need --nkeys")
		return errUsage
	}
	if *dir != "" && *env {
		fmt.Fprintln(stderr, "vigil nats users: --env and --nkeys exclude each other")
		return errUsage
	}
	var users []natsconn.User
	for _, role := range natsconn.Roles {
		p, err := natsconn.RolePermissions(role)
		if err != nil {
			return err
		}
		u := natsconn.User{Name: role, Permissions: p}
		switch {
		case *dir != "":
			if u.NKey, err = writeNKey(filepath.Join(*dir, role+".nk")); err != nil {
				return err
			}
			u.Comment = fmt.Sprintf("vigil %s: --nats-nkey %s.nk --nats-identities", role, role)
		case *env:
			u.Password = "$VIGIL_NATS_" + strings.ToUpper(role) + "_PASSWORD"
		default:
			if u.Password, err = auth.Generate(nil); err != nil {
				return err
			}
		}
		if u.Comment == "" {
			u.Comment = fmt.Sprintf("vigil %s: --nats-user %s --nats-password … --nats-identities", role, role)
		}
		users = append(users, u)
	}
	for _, host := range agents {
		p, err := natsconn.AgentPermissions(host, natsconn.AgentScope{})
		if err != nil {
			return fmt.Errorf("--agent %q: %w", host, err)
		}
		file := "agent-" + vigil.Token(host) + ".nk"
		pub, err := writeNKey(filepath.Join(*dir, file))
		if err != nil {
			return err
		}
		users = append(users, natsconn.User{
			NKey: pub, Permissions: p,
			Comment: fmt.Sprintf("vigil-agent of host %q: --nats-nkey %s", host, file),
		})
	}
	out := natsconn.UsersConf(users)
	if *admin {
		pub, err := writeNKey(filepath.Join(*dir, "admin.nk"))
		if err != nil {
			return err
		}
		// No permissions: everything, for operators with the nats CLI.
		out = strings.Replace(out, "  ]\n}\n", fmt.Sprintf("    # admin: every subject (nats --nkey admin.nk); keep it off the hosts\n    { nkey: %q }\n  ]\n}\n", pub), 1)
	}
	fmt.Fprint(stdout, "# vigil's NATS users (vigil nats users); merge into the nats-server config.\n"+out)
	return nil
}

// writeNKey makes a user nkey, writes its seed to path (mode 0600,
// replacing the file) and returns its public key.
func writeNKey(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if err := write(path, append(seed, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("nkey file: %w", err)
	}
	return pub, nil
}

func runNATSAgent(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil nats agent", flag.ContinueOnError)
	host := fs.String("host", "", "the agent's system `id` (vigil-agent --system-id; required)")
	toast := fs.String("toast", "", "desktop `name` whose toasts the identity may read (vigil-agent toast --toast-name)")
	alerts := fs.Bool("alerts", false, "also allow threshold alerts through ingest (vigil.in.alert): such an agent can raise a manual alert about any service")
	out := fs.String("nkey", "", "`file` to write the nkey seed to (default ID.nk); must not exist")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *host == "" {
		fmt.Fprintln(stderr, "vigil nats agent: --host is required")
		return errUsage
	}
	p, err := natsconn.AgentPermissions(*host, natsconn.AgentScope{Alerts: *alerts, Toast: *toast})
	if err != nil {
		return err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = vigil.Token(*host) + ".nk"
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("nkey file: %w", err)
	}
	_, err = f.Write(append(seed, '\n'))
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("nkey file: %w", err)
	}
	u := natsconn.User{
		NKey: pub, Permissions: p,
		Comment: fmt.Sprintf("vigil-agent of host %q: vigil-agent install --nats-nkey %s", *host, filepath.Base(*out)),
	}
	fmt.Fprintf(stderr, "wrote the nkey seed of host %q to %s (keep it secret; give it to vigil-agent --nats-nkey)\n", *host, *out)
	fmt.Fprint(stdout, "# add to authorization.users of the nats-server config\n"+u.Conf(""))
	return nil
}

func runNATSCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil nats certs", flag.ContinueOnError)
	dir := fs.String("dir", "", "`directory` to write the files to (required)")
	hosts := fs.String("hosts", "localhost,127.0.0.1,::1", "comma-separated DNS names and IP addresses of the server certificate")
	days := fs.Int("days", 825, "validity of the certificates in `days`")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "vigil nats certs: --dir is required")
		return errUsage
	}
	if *days < 1 {
		fmt.Fprintln(stderr, "vigil nats certs: --days must be >= 1")
		return errUsage
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	validity := time.Duration(*days) * 24 * time.Hour
	path := func(n string) string { return filepath.Join(*dir, n) }
	var ca *natsconn.CA
	certPEM, err1 := os.ReadFile(path("ca.pem"))
	keyPEM, err2 := os.ReadFile(path("ca-key.pem"))
	switch {
	case err1 == nil && err2 == nil:
		c, err := natsconn.ParseCA(certPEM, keyPEM)
		if err != nil {
			return err
		}
		ca = c
		fmt.Fprintf(stderr, "reusing the CA of %s\n", path("ca.pem"))
	case os.IsNotExist(err1) && os.IsNotExist(err2):
		c, err := natsconn.NewCA("vigil private CA", validity)
		if err != nil {
			return err
		}
		ca = c
		k, err := ca.KeyPEM()
		if err != nil {
			return err
		}
		if err := errors.Join(write(path("ca.pem"), ca.CertPEM(), 0o644), write(path("ca-key.pem"), k, 0o600)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: need both ca.pem and ca-key.pem, or neither: %w", *dir, errors.Join(err1, err2))
	}
	var hs []string
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	for _, c := range []struct {
		file  string
		hosts []string
	}{{"server", hs}, {"client", nil}} {
		cert, key, err := ca.Issue("vigil "+c.file, c.hosts, validity)
		if err != nil {
			return err
		}
		// The key is readable by its group, so a container user sharing the
		// mounted directory can read it; the directory keeps others out.
		if err := errors.Join(write(path(c.file+".pem"), cert, 0o644), write(path(c.file+"-key.pem"), key, 0o640)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s: ca.pem, server.pem, server-key.pem (hosts %s), client.pem, client-key.pem\n", *dir, strings.Join(hs, ", "))
	return nil
}

func write(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // WriteFile keeps the mode of an existing file
}
