package main

// The user commands pulse, cancel, status and events: thin wrappers of
// package client. Their package-level names start with "cli" so that they never
// collide with the server side of this package.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/client"
)

// Exit codes of the user commands.
const (
	cliExitOK    = 0
	cliExitError = 1 // the server refused or could not be reached
	cliExitUsage = 2 // bad flags or arguments
)

// cliDefaultServer is the API the commands talk to without --server or
// $VIGIL_SERVER: the embedded default on this machine.
const cliDefaultServer = "http://127.0.0.1:8080"

// runPulse implements `vigil pulse NAME --next-in 60s [--grace 30s] [--owner-type mail --owner-target a@b] [--host H] [--message M] [--server URL] [--token T]`.
func runPulse(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := cliFlagSet("pulse", "NAME --next-in DURATION [flags]",
		"Tell vigil that service NAME is alive and pulses again within --next-in.", stderr)
	var conn cliConn
	conn.bind(fs)
	var nextIn, grace cliDuration
	fs.Var(&nextIn, "next-in", "`duration` until the next pulse is due, as 60s, 1h30m or plain seconds (required)")
	fs.Var(&grace, "grace", "`duration` the service may be late before it is down (default: the server's)")
	ownerType := fs.String("owner-type", "", "who is told when the service goes down: pushover, mail, webhook or toast")
	ownerTarget := fs.String("owner-target", "", "the owner's address in that channel (user key, e-mail, URL, desktop)")
	host := fs.String("host", "", "host the service runs on")
	message := fs.String("message", "", "free text stored with the pulse")
	pos, code := cliParse(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return cliUsage(fs, "pulse", fmt.Errorf("want one service NAME, got %d arguments", len(pos)))
	}
	if !nextIn.set {
		return cliUsage(fs, "pulse", errors.New("--next-in is required"))
	}
	p := vigil.Pulse{Service: pos[0], NextIn: vigil.Seconds(nextIn.d), Host: *host, Message: *message}
	if grace.set {
		g := vigil.Seconds(grace.d)
		p.Grace = &g
	}
	if *ownerType != "" || *ownerTarget != "" {
		p.Owner = &vigil.Owner{Type: *ownerType, Target: *ownerTarget}
	}
	if err := p.Validate(); err != nil {
		return cliUsage(fs, "pulse", cliFlagError(err))
	}
	c, err := conn.client(getenv)
	if err != nil {
		return cliUsage(fs, "pulse", err)
	}
	ctx, cancel := context.WithTimeout(ctx, conn.timeout)
	defer cancel()
	rec, err := c.Pulse(ctx, p)
	if err != nil {
		return cliFail(stderr, "pulse", err)
	}
	fmt.Fprintf(stdout, "pulsed %s (seq %d): next pulse due by %s\n",
		cliCell(rec.Service), rec.Seq, rec.Deadline().Local().Format(time.RFC3339))
	return cliExitOK
}

// runCancel implements `vigil cancel NAME [--server URL] [--token T]`.
func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := cliFlagSet("cancel", "NAME [flags]",
		"Stop watching service NAME: no alert for it until it pulses again.", stderr)
	var conn cliConn
	conn.bind(fs)
	pos, code := cliParse(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return cliUsage(fs, "cancel", fmt.Errorf("want one service NAME, got %d arguments", len(pos)))
	}
	if err := vigil.ValidateName(pos[0]); err != nil {
		return cliUsage(fs, "cancel", cliFlagError(err))
	}
	c, err := conn.client(getenv)
	if err != nil {
		return cliUsage(fs, "cancel", err)
	}
	ctx, cancel := context.WithTimeout(ctx, conn.timeout)
	defer cancel()
	rec, err := c.Cancel(ctx, pos[0])
	if err != nil {
		return cliFail(stderr, "cancel", err)
	}
	fmt.Fprintf(stdout, "cancelled %s (seq %d)\n", cliCell(rec.Service), rec.Seq)
	return cliExitOK
}

// runStatus implements `vigil status [--server URL] [--token T] [--json] [--status down,late]`: a table of services.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := cliFlagSet("status", "[flags]",
		"List every service with its status, sorted by name.", stderr)
	var conn cliConn
	conn.bind(fs)
	asJSON := fs.Bool("json", false, "print the services as a JSON array instead of a table")
	statusList := fs.String("status", "", "only services in these statuses, comma-separated: up, late, down, cancelled")
	pos, code := cliParse(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 0 {
		return cliUsage(fs, "status", fmt.Errorf("unexpected arguments %q", pos))
	}
	var statuses []vigil.Status
	if *statusList != "" {
		for s := range strings.SplitSeq(*statusList, ",") {
			st := vigil.Status(strings.ToLower(strings.TrimSpace(s)))
			if !st.Valid() {
				return cliUsage(fs, "status", fmt.Errorf("--status: unknown status %q (up, late, down, cancelled)", s))
			}
			statuses = append(statuses, st)
		}
	}
	c, err := conn.client(getenv)
	if err != nil {
		return cliUsage(fs, "status", err)
	}
	ctx, cancel := context.WithTimeout(ctx, conn.timeout)
	defer cancel()
	items, err := c.AllServices(ctx, statuses...)
	if err != nil {
		return cliFail(stderr, "status", err)
	}
	if *asJSON {
		if items == nil {
			items = []vigil.ServiceStatus{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(items); err != nil {
			return cliFail(stderr, "status", err)
		}
		return cliExitOK
	}
	cliTable(stdout, items, time.Now())
	return cliExitOK
}

// cliTable writes services as an aligned table with times relative to now.
func cliTable(w io.Writer, items []vigil.ServiceStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tSINCE\tLAST PULSE\tDEADLINE\tOWNER")
	for _, s := range items {
		deadline := cliRelative(s.Deadline, now)
		if s.Status == vigil.StatusCancelled {
			deadline = "-"
		}
		owner := "-"
		if s.Owner != nil {
			owner = cliCell(s.Owner.Type + ":" + s.Owner.Target)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cliCell(s.Name), s.Status,
			cliRelative(s.Since, now), cliRelative(s.LastPulse, now), deadline, owner)
	}
	_ = tw.Flush()
}

// cliRelative formats t as a short duration from now: "12s ago", "in 48s",
// "3m5s ago", "in 2h10m", "4d3h ago"; "now" within a second, "-" for the
// zero time.
func cliRelative(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	abs := d.Abs()
	if abs < time.Second {
		return "now"
	}
	s := cliShort(abs)
	if d > 0 {
		return "in " + s
	}
	return s + " ago"
}

// cliShort formats a positive duration with its two largest units, rounded
// down: 12s, 3m5s, 2h10m, 4d3h.
func cliShort(d time.Duration) string {
	sec := int64(d / time.Second)
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", sec)
	case sec < 3600:
		return cliUnits(sec/60, "m", sec%60, "s")
	case sec < 86400:
		return cliUnits(sec/3600, "h", sec%3600/60, "m")
	default:
		return cliUnits(sec/86400, "d", sec%86400/3600, "h")
	}
}

func cliUnits(a int64, ua string, b int64, ub string) string {
	if b == 0 {
		return strconv.FormatInt(a, 10) + ua
	}
	return strconv.FormatInt(a, 10) + ua + strconv.FormatInt(b, 10) + ub
}

// cliCell returns s fit for one table cell: quoted when it holds a tab,
// newline or other control character, "-" when empty.
func cliCell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

// cliConn holds the flags every user command shares.
type cliConn struct {
	server, token string
	timeout       time.Duration
}

// bind defines --server, --token and --timeout on fs. Their environment
// defaults are read after parsing, so --help never prints a token.
func (c *cliConn) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "`URL` of vigil's HTTP API (default $VIGIL_SERVER or "+cliDefaultServer+")")
	fs.StringVar(&c.token, "token", "", "API `token`, sent as Authorization: Bearer (default $VIGIL_TOKEN)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up on the server after this `duration`")
}

// client returns a client of the chosen server, falling back on
// $VIGIL_SERVER, $VIGIL_TOKEN and cliDefaultServer.
func (c *cliConn) client(getenv func(string) string) (*client.Client, error) {
	server, token := c.server, c.token
	if server == "" {
		server = getenv("VIGIL_SERVER")
	}
	if server == "" {
		server = cliDefaultServer
	}
	if token == "" {
		token = getenv("VIGIL_TOKEN")
	}
	if c.timeout <= 0 {
		return nil, errors.New("--timeout must be > 0")
	}
	return client.New(server, client.WithToken(token), client.WithHTTPClient(&http.Client{Timeout: c.timeout}))
}

// cliFlagSet returns the flag set of a user command, writing errors and
// --help to stderr.
func cliFlagSet(cmd, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vigil "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vigil %s %s\n\n%s\n\nflags (also after NAME):\n", cmd, synopsis, about)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nexit status: 0 ok, 1 server or network error, 2 usage error.\n")
	}
	return fs
}

// cliParse parses flags wherever they appear among args ("NAME --next-in
// 60s" as well as "--next-in 60s NAME"), and returns the positional
// arguments. Everything after "--" is positional. code is -1 to go on, else
// the exit code: 0 after --help, 2 after a bad flag (already reported).
func cliParse(fs *flag.FlagSet, args []string) (pos []string, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, cliExitOK
			}
			return nil, cliExitUsage
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), -1
		}
		if len(rest) == 0 {
			return pos, -1
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// cliUsage reports a usage error with the command's usage and returns 2.
func cliUsage(fs *flag.FlagSet, cmd string, err error) int {
	fmt.Fprintf(fs.Output(), "vigil %s: %v\n", cmd, err)
	fs.Usage()
	return cliExitUsage
}

// cliFail reports an error of the server or the network and returns its
// exit code: 2 when the server found the input invalid, 1 otherwise.
func cliFail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "vigil %s: %v\n", cmd, err)
	if errors.Is(err, vigil.ErrInvalid) {
		return cliExitUsage
	}
	return cliExitError
}

// cliFlagError renames the JSON field of a validation error to its flag
// ("next_in: …" becomes "--next-in: …").
func cliFlagError(err error) error {
	var fe *vigil.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	switch fe.Field {
	case "service":
		return fmt.Errorf("NAME %s", fe.Msg)
	case "next_in", "grace", "host", "message":
		return fmt.Errorf("--%s %s", strings.ReplaceAll(fe.Field, "_", "-"), fe.Msg)
	case "owner.type", "owner.target":
		return fmt.Errorf("--%s %s", strings.ReplaceAll(fe.Field, ".", "-"), fe.Msg)
	}
	return err
}

// cliDuration is a flag value of a duration given as a Go duration ("60s",
// "1h30m") or a plain number of seconds ("60", "0.5"); negative values are
// refused.
type cliDuration struct {
	d   time.Duration
	set bool
}

func (c *cliDuration) String() string {
	if c == nil || !c.set {
		return ""
	}
	return c.d.String()
}

func (c *cliDuration) Set(s string) error {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64/time.Second) {
			return errors.New("want a duration like 60s or 1h30m, or a number of seconds")
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	c.d, c.set = d, true
	return nil
}

// runEvents implements `vigil events [--service RE] [--service-exact NAME]
// [--message RE] [--level N] [--from T] [--to T] [--limit N] [--asc]
// [--json]` and, with "tail" first, runEventsTail.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 && args[0] == "tail" {
		return runEventsTail(ctx, args[1:], stdout, stderr, getenv)
	}
	fs := cliFlagSet("events", "[flags]   (or: vigil events tail [flags])",
		"List events, newest first, from the last 24 h unless --from says otherwise.\n"+
			"--service and --message are case-insensitive RE2 regular expressions.\n"+
			"Times T are RFC 3339 (2026-11-21T12:00:00Z), Unix seconds, or a duration ago (90m, 2h).", stderr)
	var conn cliConn
	conn.bind(fs)
	var f cliEventFilter
	f.bind(fs)
	var from, to cliTime
	fs.Var(&from, "from", "list events received at or after `T`")
	fs.Var(&to, "to", "list events received at or before `T`")
	limit := fs.Int("limit", 100, "most events to print")
	asc := fs.Bool("asc", false, "oldest first")
	asJSON := fs.Bool("json", false, "print the events as a JSON array instead of a table")
	pos, code := cliParse(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 0 {
		return cliUsage(fs, "events", fmt.Errorf("unexpected arguments %q (did you mean vigil events tail?)", pos))
	}
	if *limit < 1 {
		return cliUsage(fs, "events", errors.New("--limit must be at least 1"))
	}
	c, err := conn.client(getenv)
	if err != nil {
		return cliUsage(fs, "events", err)
	}
	ctx, cancel := context.WithTimeout(ctx, conn.timeout)
	defer cancel()
	q := client.EventQuery{Filter: f.filter(), Paging: client.Paging{From: from.t, To: to.t, Ascending: *asc}}
	items := []vigil.Event{}
	for len(items) < *limit {
		q.Limit = min(*limit-len(items), 1000)
		p, err := c.Events(ctx, q)
		if err != nil {
			return cliFail(stderr, "events", cliParamError(err))
		}
		items = append(items, p.Items...)
		if p.NextCursor == "" || p.NextCursor == q.Cursor {
			break
		}
		q.Cursor = p.NextCursor
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(items); err != nil {
			return cliFail(stderr, "events", err)
		}
		return cliExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSERVICE\tLEVEL\tMESSAGE")
	for _, e := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Received.Local().Format(time.RFC3339), cliCell(e.Service), e.Level, cliCell(e.Message))
	}
	_ = tw.Flush()
	return cliExitOK
}

// runEventsTail implements `vigil events tail [--service RE] [--service-exact
// NAME] [--message RE] [--level N] [--json]`: print each event as it
// arrives until interrupted, reconnecting (and resuming with Last-Event-ID)
// when the connection drops.
func runEventsTail(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := cliFlagSet("events tail", "[flags]",
		"Print events as they arrive, until interrupted. After a dropped connection it\n"+
			"reconnects and goes on after the last event printed: nothing missed, nothing twice.", stderr)
	var conn cliConn
	conn.bind(fs)
	var f cliEventFilter
	f.bind(fs)
	asJSON := fs.Bool("json", false, "print each event as one line of JSON (NDJSON)")
	pos, code := cliParse(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 0 {
		return cliUsage(fs, "events tail", fmt.Errorf("unexpected arguments %q", pos))
	}
	c, err := conn.client(getenv)
	if err != nil {
		return cliUsage(fs, "events tail", err)
	}
	enc := json.NewEncoder(stdout)
	err = c.TailEvents(ctx, f.filter(), func(e vigil.Event) error {
		if *asJSON {
			return enc.Encode(e)
		}
		_, err := fmt.Fprintf(stdout, "%s  %-8s  %s  %s\n", e.Received.Local().Format(time.RFC3339), e.Level, cliCell(e.Service), cliCell(e.Message))
		return err
	})
	if err != nil {
		return cliFail(stderr, "events tail", cliParamError(err))
	}
	return cliExitOK
}

// cliEventFilter holds the filter flags of vigil events and events tail.
type cliEventFilter struct {
	service, message string
	exact            cliStrings
	level            cliLevel
}

func (f *cliEventFilter) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.service, "service", "", "only services whose name matches this case-insensitive `regexp`")
	fs.Var(&f.exact, "service-exact", "only the service with exactly this `name` (repeatable)")
	fs.StringVar(&f.message, "message", "", "only messages matching this case-insensitive `regexp`")
	fs.Var(&f.level, "level", "lowest `level` shown: a number or debug, info, warning, error, critical")
}

func (f *cliEventFilter) filter() client.Filter {
	return client.Filter{Service: f.service, ServiceExact: f.exact, Message: f.message, Level: f.level.l}
}

// cliParamError renames the query parameter of a server's 400 to its flag
// ("service_exact: …" becomes "--service-exact: …").
func cliParamError(err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Field == "" {
		return err
	}
	return fmt.Errorf("--%s: %s (%w)", strings.ReplaceAll(ce.Field, "_", "-"), strings.TrimPrefix(ce.Message, ce.Field+": "), err)
}

// cliStrings is a repeatable string flag.
type cliStrings []string

func (s *cliStrings) String() string { return strings.Join(*s, ",") }

func (s *cliStrings) Set(v string) error {
	if err := vigil.ValidateName(v); err != nil {
		return errors.New("not a valid service name")
	}
	*s = append(*s, v)
	return nil
}

// cliLevel is a flag value of a level: a number or a name.
type cliLevel struct{ l vigil.Level }

func (c *cliLevel) String() string {
	if c == nil || c.l == 0 {
		return ""
	}
	return c.l.String()
}

func (c *cliLevel) Set(s string) error {
	l, err := vigil.ParseLevel(s)
	if err != nil {
		return errors.New("want a number >= 0 or debug, info, warning, error, critical")
	}
	c.l = l
	return nil
}

// cliTime is a flag value of a time: RFC 3339, Unix seconds, or a duration
// before now ("90m", "2h").
type cliTime struct {
	t   time.Time
	now func() time.Time
}

func (c *cliTime) String() string {
	if c == nil || c.t.IsZero() {
		return ""
	}
	return c.t.Format(time.RFC3339)
}

func (c *cliTime) Set(s string) error {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		c.t = t
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && !strings.ContainsAny(s, "xXpP_") {
		sec, frac := math.Modf(f)
		c.t = time.Unix(int64(sec), int64(frac*1e9))
		return nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		now := time.Now
		if c.now != nil {
			now = c.now
		}
		c.t = now().Add(-d)
		return nil
	}
	return errors.New("want an RFC 3339 time (2026-11-21T12:00:00Z), Unix seconds, or a duration ago (90m, 2h)")
}
