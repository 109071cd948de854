package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

var updateEnvFile = flag.Bool("update-env-file", false, "rewrite deploy/vigil.env from the options")

// TestEnvFileListsEveryOption keeps deploy/vigil.env complete: every option
// of every server command, as its VIGIL_* variable with its default. Run
// `go test ./cmd/vigil -run EnvFile -update-env-file` after adding one.
func TestEnvFileListsEveryOption(t *testing.T) {
	var b strings.Builder
	b.WriteString(`# Every VIGIL_* environment variable of the vigil server, with its default.
# Generated from the options by TestEnvFileListsEveryOption (cmd/vigil):
#   go test ./cmd/vigil -run EnvFile -update-env-file
# Uncomment what you change. Precedence: flags > environment > the YAML file
# given by VIGIL_CONFIG > defaults. Secrets (passwords, tokens) are never
# logged. Used by deploy/systemd (EnvironmentFile=) and docker-compose.
`)
	seen := map[string]bool{}
	group := ""
	for _, cmd := range append([]string{"all"}, allRoles()...) {
		roles, _ := serverRoles(cmd)
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := defaultConfig()
		bd := bind(fs, &c, cmd, roles)
		for _, o := range bd.Opts {
			if seen[o.Name] {
				continue
			}
			seen[o.Name] = true
			if o.Group != group {
				group = o.Group
				fmt.Fprintf(&b, "\n## %s\n", group)
			}
			def := ""
			if f := fs.Lookup(o.Name); f != nil && !o.Secret {
				def = f.DefValue
			}
			usage := strings.ReplaceAll(o.Usage, "`", "")
			where := ""
			if o.Key != "" {
				where = " (yaml " + o.Key + ")"
			}
			fmt.Fprintf(&b, "# %s%s\n#%s=%s\n", usage, where, envName(o.Name), def)
		}
	}
	const path = "../../deploy/vigil.env"
	if *updateEnvFile {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b.String() {
		t.Errorf("%s is out of date; run: go test ./cmd/vigil -run EnvFile -update-env-file", path)
	}
}
