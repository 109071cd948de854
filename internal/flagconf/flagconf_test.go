package flagconf_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/flagconf"
)

type conf struct {
	ConfigFile string        `yaml:"-"`
	Name       string        `yaml:"name"`
	Every      time.Duration `yaml:"every"`
	Count      int           `yaml:"count"`
}

func load(t *testing.T, file string, env map[string]string, args ...string) (conf, error) {
	t.Helper()
	defaults := conf{Name: "default", Every: time.Second, Count: 1}
	c := defaults
	b := &flagconf.Binder{FS: flag.NewFlagSet("t", flag.ContinueOnError), Prefix: "T_"}
	b.Str(&c.ConfigFile, "config", "", "file")
	b.Str(&c.Name, "name", "name", "name")
	b.Dur(&c.Every, "every", "every", "every")
	b.Int(&c.Count, "count", "count", "count")
	if file != "" {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	_, err := flagconf.Load(b, &c, defaults, args, func(k string) string { return env[k] })
	return c, err
}

func TestPrecedenceFlagsOverEnvOverFileOverDefaults(t *testing.T) {
	c, err := load(t, "name: file\nevery: 1m\ncount: 3\n", map[string]string{"T_EVERY": "2m", "T_COUNT": "4"}, "--count", "5")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "file" || c.Every != 2*time.Minute || c.Count != 5 {
		t.Errorf("got %+v; want name from the file, every from the env, count from the flag", c)
	}
}

func TestErrorsNameTheirSource(t *testing.T) {
	if _, err := load(t, "", map[string]string{"T_EVERY": "soon"}); err == nil || !strings.HasPrefix(err.Error(), "T_EVERY: ") {
		t.Errorf("bad env value: %v", err)
	}
	if _, err := load(t, "name: x\nunknown: y\n", nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := load(t, "", nil, "--count", "many"); err == nil {
		t.Error("bad flag value must fail")
	}
}
