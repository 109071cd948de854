package notifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

type nopChannel string

func (c nopChannel) Type() string                                        { return string(c) }
func (c nopChannel) Send(context.Context, string, channel.Message) error { return nil }

func TestDefaultRetryCoversADay(t *testing.T) {
	r := DefaultRetry()
	if got := r.Attempts(); got != 33 {
		t.Errorf("Attempts() = %d, want 33", got)
	}
	if got, want := r.Span(), 87910*time.Second; got != want {
		t.Errorf("Span() = %v, want %v", got, want)
	}
	if r.Span() < 24*time.Hour {
		t.Errorf("Span() = %v, want >= 24h", r.Span())
	}
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 9: 2560 * time.Second, 10: time.Hour, 1000: time.Hour} {
		if got := r.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
		if j := r.Jittered(n); j < want || j > want+want/10 {
			t.Errorf("Jittered(%d) = %v, want within [%v, +10%%]", n, j, want)
		}
	}
	if got := (Retry{Initial: time.Second, Max: time.Second}).Attempts(); got != 1 {
		t.Errorf("For 0: Attempts() = %d, want 1", got)
	}
}

func mustCompile(t *testing.T, c Config) *compiled {
	t.Helper()
	out, err := compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPlan(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Channels = []channel.Channel{nopChannel("mail"), nopChannel("pushover")}
	cfg.Owner = Policy{Repeat: time.Hour}
	mail := func(s string) vigil.Owner { return vigil.Owner{Type: "mail", Target: s} }
	po := vigil.Owner{Type: "pushover", Target: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"}
	cfg.Routes = []Route{
		{
			Name: "db", Match: Match{Service: "db-.*", Level: "error"}, Receivers: []vigil.Owner{mail("dba@x.org"), mail("me@x.org")},
			Policy: Policy{Repeat: 30 * time.Minute, Escalate: []Escalation{
				{After: 15 * time.Minute, Receivers: []vigil.Owner{po, mail("dba@x.org")}},
				{After: time.Hour, Receivers: []vigil.Owner{mail("boss@x.org")}},
			}},
		},
		{Name: "gaps", Match: Match{Kinds: []vigil.AlertKind{vigil.AlertGap}}, Receivers: []vigil.Owner{mail("ops@x.org")}},
	}
	cfg.Default = DefaultRoute{Receivers: []vigil.Owner{mail("ops@x.org")}}
	c := mustCompile(t, cfg)
	type row struct {
		Stage         Stage
		Route, Target string
		Step          int
		After, Repeat time.Duration
	}
	rows := func(ss []spec) []row {
		var out []row
		for _, s := range ss {
			out = append(out, row{s.stage, s.route, s.target, s.step, s.after, s.repeat})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		a    vigil.Alert
		want []row
	}{
		{
			"owner first, then the route; the owner named twice once, with the shorter repeat; escalations not told already",
			vigil.Alert{Kind: vigil.AlertDown, Service: "db-1", Level: vigil.LevelError, Owner: &vigil.Owner{Type: "email", Target: "me@x.org"}},
			[]row{
				{StageNotify, "owner", "me@x.org", 0, 0, 30 * time.Minute},
				{StageNotify, "db", "dba@x.org", 0, 0, 30 * time.Minute},
				{StageEscalate, "db", po.Target, 1, 15 * time.Minute, 0},
				{StageEscalate, "db", "boss@x.org", 2, time.Hour, 0},
			},
		},
		{
			"recovered matches like its down alert, without repeats or escalations",
			vigil.Alert{Kind: vigil.AlertRecovered, Service: "db-1", Level: vigil.LevelInfo},
			[]row{{StageNotify, "db", "dba@x.org", 0, 0, 0}, {StageNotify, "db", "me@x.org", 0, 0, 0}},
		},
		{
			"no route: default",
			vigil.Alert{Kind: vigil.AlertDown, Service: "web", Level: vigil.LevelError},
			[]row{{StageNotify, "default", "ops@x.org", 0, 0, 0}},
		},
		{
			"kinds",
			vigil.Alert{Kind: vigil.AlertGap, Level: vigil.LevelWarning},
			[]row{{StageNotify, "gaps", "ops@x.org", 0, 0, 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, rows(c.plan(&tc.a))); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func(c *Config) {}
	for _, tc := range []struct {
		name, want string
		edit       func(*Config)
	}{
		{"defaults", "", ok},
		{"route on an unconfigured channel", "routes[0].receivers[0]: channel mail is not configured", func(c *Config) {
			c.Routes = []Route{{Name: "r", Receivers: []vigil.Owner{{Type: "mail", Target: "a@b.c"}}}}
		}},
		{"bad regexp", "routes[0].match.service", func(c *Config) {
			c.Routes = []Route{{Name: "r", Match: Match{Service: "("}, Receivers: []vigil.Owner{{Type: "toast", Target: "d"}}}}
		}},
		{"bad level", "routes[0].match.level", func(c *Config) {
			c.Routes = []Route{{Name: "r", Match: Match{Level: "loud"}, Receivers: []vigil.Owner{{Type: "toast", Target: "d"}}}}
		}},
		{"reserved name", `routes[0].name "owner"`, func(c *Config) {
			c.Routes = []Route{{Name: "owner", Receivers: []vigil.Owner{{Type: "toast", Target: "d"}}}}
		}},
		{"bad target", "default.receivers[0]: owner.target", func(c *Config) {
			c.Default.Receivers = []vigil.Owner{{Type: "toast", Target: "a b"}}
		}},
		{"escalation without delay", "owner.escalate[0].after", func(c *Config) {
			c.Owner.Escalate = []Escalation{{Receivers: []vigil.Owner{{Type: "toast", Target: "d"}}}}
		}},
		{"unknown template", "templates.nope", func(c *Config) { c.Templates = map[string]Template{"nope": {Title: "x"}} }},
		{"template syntax", "templates.down.title", func(c *Config) { c.Templates = map[string]Template{"down": {Title: "{{.Service"}} }},
		{"template field", "templates.down.body", func(c *Config) { c.Templates = map[string]Template{"down": {Body: "{{.Nope}}"}} }},
		{"retry", "retry.max", func(c *Config) { c.Retry.Max = time.Second }},
		{"workers", "workers", func(c *Config) { c.Workers = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	since := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	down := vigil.Alert{
		ID: "down:backup:7", Kind: vigil.AlertDown, Service: "backup", Host: "db1", Level: vigil.LevelError,
		At: since, LastPulse: since.Add(-10 * time.Minute), Deadline: since, DownSeq: 7,
	}
	rec := vigil.Alert{
		ID: "recovered:backup:7", Kind: vigil.AlertRecovered, Service: "backup", Level: vigil.LevelInfo,
		At: since.Add(4 * time.Minute), DownSince: since, LastPulse: since.Add(3*time.Minute + 12*time.Second), DownSeq: 7,
	}
	wt := down
	wt.Origin = "watchtower"
	wtUp := rec
	wtUp.Origin = "watchtower"
	job := func(s Stage) *Job { return &Job{Stage: s} }
	def := mustCompile(t, DefaultConfig()).templates
	over := mustCompile(t, Config{
		GroupThreshold: 5, Retry: DefaultRetry(), SendTimeout: time.Second, Workers: 1,
		Templates: map[string]Template{"down": {Title: "DOWN {{.Service}} ({{.Host}})"}},
	}).templates
	for _, tc := range []struct {
		name        string
		t           *templates
		j           *Job
		alerts      []vigil.Alert
		title, body string
	}{
		{
			"down", def, job(StageNotify),
			[]vigil.Alert{down},
			"backup is down",
			"backup on db1 has not pulsed since 2026-03-04 09:50:00 UTC; its pulse was due by 2026-03-04 10:00:00 UTC.",
		},
		{
			"recovered says how long", def, job(StageNotify),
			[]vigil.Alert{rec},
			"backup recovered",
			"backup is pulsing again after being down for 3m12s (since 2026-03-04 10:00:00 UTC).",
		},
		{"repeat", def, job(StageRepeat), []vigil.Alert{down}, "Still down: backup is down", ""},
		{
			"override title, default body", over, job(StageNotify),
			[]vigil.Alert{down},
			"DOWN backup (db1)",
			"backup on db1 has not pulsed since 2026-03-04 09:50:00 UTC; its pulse was due by 2026-03-04 10:00:00 UTC.",
		},
		{
			"watchTower down", def, job(StageNotify),
			[]vigil.Alert{wt},
			"Service backup has not pulsed",
			"The service backup is not pulsing since " + down.LastPulse.Local().Format("20060102 15:04:05"),
		},
		{"watchTower recovered", def, job(StageNotify), []vigil.Alert{wtUp}, "Service backup is pulsing again", "The service backup is pulsing again"},
		{
			"group", def, job(StageNotify),
			[]vigil.Alert{down, {Kind: vigil.AlertDown, Service: "web", At: since, LastPulse: since}},
			"2 services are down", "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newData(tc.j, tc.alerts, since.Add(5*time.Minute), "")
			title, body, err := tc.t.render(d)
			if err != nil {
				t.Fatal(err)
			}
			if title != tc.title {
				t.Errorf("title = %q, want %q", title, tc.title)
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
			if tc.name == "repeat" && !strings.Contains(body, "down for 5m0s") {
				t.Errorf("repeat body = %q, want the time down", body)
			}
			if tc.name == "group" && (!strings.Contains(body, "- backup on db1") || !strings.Contains(body, "- web")) {
				t.Errorf("group body = %q, want both services listed", body)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ typ, in, want string }{
		{"pushover", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "uQiR…VRsG"},
		{"pushover", "short", "…"},
		{"webhook", "https://u:p@hooks.example.com/services/T0/B0/XXXX?token=1", "https://hooks.example.com/…"},
		{"webhook", "https://hooks.example.com", "https://hooks.example.com"},
		{"mail", "ops@example.com", "ops@example.com"},
		{"toast", "desk-1", "desk-1"},
	} {
		if got := Redact(tc.typ, tc.in); got != tc.want {
			t.Errorf("Redact(%s, %s) = %q, want %q", tc.typ, tc.in, got, tc.want)
		}
	}
}

func TestJobIDIsStablePerAlertChannelTarget(t *testing.T) {
	a := jobID("down:x:1", StageNotify, "owner", 0, "mail", "a@b.c")
	if b := jobID("down:x:1", StageNotify, "db", 0, "mail", "a@b.c"); a != b {
		t.Errorf("the first notification's id depends on the route: %s != %s", a, b)
	}
	for _, other := range []string{
		jobID("down:x:2", StageNotify, "owner", 0, "mail", "a@b.c"),
		jobID("down:x:1", StageNotify, "owner", 0, "mail", "b@b.c"),
		jobID("down:x:1", StageRepeat, "owner", 1, "mail", "a@b.c"),
		jobID("down:x:1", StageEscalate, "owner", 1, "mail", "a@b.c"),
	} {
		if other == a {
			t.Errorf("id collision: %s", a)
		}
	}
	if len(a) != 32 {
		t.Errorf("len(id) = %d, want 32", len(a))
	}
}

func TestSilenceMatchers(t *testing.T) {
	f := false
	now := time.Now()
	s := Silence{
		Matchers: []Matcher{{Name: "service", Value: "batch-.*", IsRegex: true}, {Name: "channel", Value: "pushover", IsEqual: &f}},
		EndsAt:   now.Add(time.Hour), CreatedBy: "me", Comment: "c",
	}
	if err := s.validate(now); err != nil {
		t.Fatal(err)
	}
	a := &vigil.Alert{Service: "batch-1", Kind: vigil.AlertDown}
	if !s.mutes(silenceFields(a, "mail", "x@y.z"), now) {
		t.Error("mail for batch-1 not muted")
	}
	if s.mutes(silenceFields(a, "pushover", "k"), now) {
		t.Error("pushover muted despite channel != pushover")
	}
	if s.mutes(silenceFields(&vigil.Alert{Service: "xbatch-1"}, "mail", "x"), now) {
		t.Error("regex not anchored")
	}
	if s.mutes(silenceFields(a, "mail", "x"), now.Add(2*time.Hour)) {
		t.Error("expired silence mutes")
	}
}
