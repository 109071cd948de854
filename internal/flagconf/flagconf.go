// Package flagconf binds a program's options three ways at once: a flag
// (--nats-url), an environment variable (<prefix>NATS_URL) and a key of a
// strict YAML file (nats.url), applied with the precedence flags >
// environment > file > defaults. The vigil server and vigil-agent share it;
// it links the standard library and go.yaml.in/yaml/v3 only.
package flagconf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Option is one bound option as help, generated env files and tests list
// it: its help group, flag name, YAML key ("" for none), usage, and whether
// it is a secret whose default must not be shown.
type Option struct {
	Group, Name, Key, Usage string
	Secret                  bool
}

// Binder defines flags on FS bound to configuration fields (which hold the
// defaults) and records them in Opts in help order, under the current Group.
// Prefix starts every environment variable ("VIGIL_").
type Binder struct {
	FS     *flag.FlagSet
	Prefix string
	Group  string
	Opts   []Option
}

// EnvName returns the environment variable of flag name: prefix and the
// name in upper snake case (EnvName("VIGIL_", "nats-url") = "VIGIL_NATS_URL").
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// EnvName returns the environment variable of flag name under b.Prefix.
func (b *Binder) EnvName(name string) string { return EnvName(b.Prefix, name) }

func (b *Binder) add(name, key, usage string) {
	b.Opts = append(b.Opts, Option{Group: b.Group, Name: name, Key: key, Usage: usage})
}

// Str binds a string.
func (b *Binder) Str(p *string, name, key, usage string) {
	b.FS.StringVar(p, name, *p, usage)
	b.add(name, key, usage)
}

// Secret binds a string that is never shown: help and generated files omit
// its default.
func (b *Binder) Secret(p *string, name, key, usage string) {
	b.Str(p, name, key, usage)
	b.Opts[len(b.Opts)-1].Secret = true
}

// Dur binds a duration in Go syntax ("15s", "90m").
func (b *Binder) Dur(p *time.Duration, name, key, usage string) {
	b.FS.DurationVar(p, name, *p, usage)
	b.add(name, key, usage)
}

// Int binds an int.
func (b *Binder) Int(p *int, name, key, usage string) {
	b.FS.IntVar(p, name, *p, usage)
	b.add(name, key, usage)
}

// Int64 binds an int64.
func (b *Binder) Int64(p *int64, name, key, usage string) {
	b.FS.Int64Var(p, name, *p, usage)
	b.add(name, key, usage)
}

// Bool binds a bool.
func (b *Binder) Bool(p *bool, name, key, usage string) {
	b.FS.BoolVar(p, name, *p, usage)
	b.add(name, key, usage)
}

// Var binds a custom flag.Value.
func (b *Binder) Var(v flag.Value, name, key, usage string) {
	b.FS.Var(v, name, usage)
	b.add(name, key, usage)
}

// Load parses args on b.FS, then rebuilds *cfg from the bottom: defaults,
// the YAML file named by --config or <prefix>CONFIG (strict: unknown keys
// are errors naming their line), the environment variable of every bound
// option (flags the caller defined on b.FS itself are not read from the
// environment), and the command line again on top. It returns the file's path ("" for none).
// Errors name the flag ("--interval: …"), the variable ("VIGIL_INTERVAL: …")
// or the file. Positional arguments are left in b.FS.Args().
func Load[T any](b *Binder, cfg *T, defaults T, args []string, getenv func(string) string) (string, error) {
	b.FS.SetOutput(io.Discard)
	if err := b.FS.Parse(args); err != nil {
		return "", err
	}
	set := map[string]string{}
	b.FS.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
	path, ok := set["config"]
	if !ok {
		path = getenv(b.EnvName("config"))
	}
	*cfg = defaults
	if path != "" {
		if err := DecodeFile(path, cfg); err != nil {
			return "", err
		}
	}
	for _, o := range b.Opts {
		v := getenv(b.EnvName(o.Name))
		if v == "" || o.Name == "config" {
			continue
		}
		if err := b.FS.Set(o.Name, v); err != nil {
			return "", fmt.Errorf("%s: %w", b.EnvName(o.Name), err)
		}
	}
	for name, v := range set {
		if err := b.FS.Set(name, v); err != nil {
			return "", fmt.Errorf("--%s: %w", name, err)
		}
	}
	return path, nil
}

// DecodeFile decodes the YAML file at path into v, refusing unknown keys;
// errors name the file and the line. An empty file changes nothing.
func DecodeFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// PrintOptions writes the help of every bound option, by group: the flag,
// its usage, its environment variable, YAML key and default.
func (b *Binder) PrintOptions(w io.Writer) {
	group := ""
	for _, o := range b.Opts {
		if o.Group != group {
			group = o.Group
			fmt.Fprintf(w, "\n%s:\n", group)
		}
		f := b.FS.Lookup(o.Name)
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", o.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "\n      %s\n      env %s", usage, b.EnvName(o.Name))
		if o.Key != "" {
			fmt.Fprintf(w, ", yaml %s", o.Key)
		}
		def := f.DefValue
		if o.Secret {
			def = ""
		}
		fmt.Fprintf(w, ", default %q\n", def)
	}
}

// Redact stands for a secret in what is logged or printed: "REDACTED" when
// s is set, "" when it is not, so a reader still sees whether it is.
func Redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// LogValue renders a configuration as indented YAML for slog (a
// slog.LogValuer's body). The caller redacts its secrets first.
func LogValue(cfg any) slog.Value {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return slog.StringValue("unprintable config: " + err.Error())
	}
	return slog.StringValue(strings.TrimSpace(b.String()))
}
