package main

// The token command: vigil token create makes an API token and prints the
// configuration entry that admits it; vigil token hash prints the entry's
// hash of a token read from stdin. Neither talks to a server.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/vigil-monitor/vigil/internal/auth"
)

// runToken implements `vigil token create --name NAME --scope SCOPE[,SCOPE]`
// and `vigil token hash`.
func runToken(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printTokenUsage(stdout)
		if len(args) == 0 {
			return cliExitUsage
		}
		return cliExitOK
	}
	switch args[0] {
	case "create":
		return runTokenCreate(args[1:], stdout, stderr)
	case "hash":
		return runTokenHash(args[1:], stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "vigil token: unknown subcommand %q\n\n", args[0])
	printTokenUsage(stderr)
	return cliExitUsage
}

func printTokenUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  vigil token create --name NAME --scope SCOPE[,SCOPE]
      make an API token; prints it once, with the configuration entry
      (name, SHA-256, scopes) that lets the server accept it
  vigil token hash < FILE
      print the SHA-256 of a token read from stdin (to configure one you made)

Scopes: read (GET routes and the live stream), ingest (send pulses, events,
alerts and host stats; cancel services), write (everything). See docs/auth.md.
`)
}

func runTokenCreate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "token `name`, shown in logs and errors: 1-64 of A-Z a-z 0-9 . _ - (required)")
	var scopes scopesFlag
	fs.Var(&scopes, "scope", "`scopes`, comma separated or repeated: read, ingest, write (required)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: vigil token create --name NAME --scope SCOPE[,SCOPE]\n\nMake an API token and print it with its configuration entry.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cliExitOK
		}
		return cliExitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "vigil token create: %v\nRun 'vigil token create --help' for the options.\n", err)
		return cliExitUsage
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if len(scopes) == 0 {
		return fail(errors.New("--scope is required: read, ingest or write"))
	}
	secret, err := auth.Generate(nil)
	if err != nil {
		fmt.Fprintf(stderr, "vigil token create: %v\n", err)
		return cliExitError
	}
	t := auth.Token{Name: *name, SHA256: auth.Hash(secret), Scopes: scopes}
	if err := t.Validate(); err != nil {
		return fail(err)
	}
	list := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		list[i] = string(s)
	}
	fmt.Fprintf(stdout, `%s

This is the token; vigil keeps only its SHA-256 and cannot show it again.
Clients send it as "Authorization: Bearer <token>" (vigil pulse, status,
cancel: --token or $VIGIL_TOKEN).

Let the server accept it with this entry in its YAML configuration:

auth:
  tokens:
    - name: %s
      sha256: %s
      scopes: [%s]

or in its environment (several entries are separated by commas):

VIGIL_AUTH_TOKENS=%s
`, secret, t.Name, t.SHA256, strings.Join(list, ", "), auth.FormatTokens([]auth.Token{t}))
	return cliExitOK
}

func runTokenHash(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(stdout, "Usage: vigil token hash < FILE\n\nPrint the SHA-256 (hex) of the token on the first line of stdin.\n")
			return cliExitOK
		}
		fmt.Fprintf(stderr, "vigil token hash: unexpected argument %q (the token is read from stdin, never from the command line)\n", args[0])
		return cliExitUsage
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "vigil token hash: read stdin: %v\n", err)
		return cliExitError
	}
	secret := strings.TrimSpace(line)
	if secret == "" {
		fmt.Fprintln(stderr, "vigil token hash: no token on stdin")
		return cliExitUsage
	}
	fmt.Fprintln(stdout, auth.Hash(secret))
	return cliExitOK
}

// scopesFlag collects --scope values: comma separated, repeatable.
type scopesFlag []auth.Scope

func (f *scopesFlag) String() string {
	s := make([]string, len(*f))
	for i, sc := range *f {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

func (f *scopesFlag) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		sc := auth.Scope(strings.ToLower(strings.TrimSpace(p)))
		if !sc.Valid() {
			return fmt.Errorf("unknown scope %q: want read, ingest or write", p)
		}
		if !slices.Contains(*f, sc) {
			*f = append(*f, sc)
		}
	}
	return nil
}
