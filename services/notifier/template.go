package notifier

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/vigil-monitor/vigil"
)

// Data is what a message template sees. The fields of the (first) alert
// are promoted: {{.Service}}, {{.Host}}, {{.Title}}, {{.Message}},
// {{.Level}}, {{.At}}, {{.LastPulse}}, {{.Deadline}}, {{.DownSince}},
// {{.GapFrom}}, {{.GapTo}}, {{.Origin}}, {{.Kind}}.
type Data struct {
	vigil.Alert
	// Alerts are the alerts the message tells about: one, or every alert of
	// a grouped mass outage that routes to this receiver.
	Alerts []vigil.Alert
	// Services names the services: of Alerts, or those of a gap alert.
	Services []string
	// DownFor is how long the service was down: for a recovered alert
	// from the start of the outage to the pulse that ended it; for a
	// repeat or escalation, from the deadline until now.
	DownFor time.Duration
	// Stage is notify, repeat or escalate; Step the repeat number or the
	// escalation step.
	Stage Stage
	Step  int
	// URL links to the service in vigil (empty without external_url).
	URL string
	// Now is when the message was rendered.
	Now time.Time
}

// TemplateKeys are the keys of Config.Templates.
var TemplateKeys = []string{"down", "recovered", "gap", "manual", "group", "watchtower_down", "watchtower_recovered"}

// defaultTemplates are the texts used unless Config.Templates overrides
// them. The watchtower ones are watchTower's own strings (server/alert.py,
// server/heartbeat.py), used for services created through its protocol.
var defaultTemplates = map[string]Template{
	"down": {
		Title: `{{if eq .Stage "repeat"}}Still down: {{else if eq .Stage "escalate"}}Escalated: {{end}}{{.Service}} is down`,
		Body: `{{.Service}}{{with .Host}} on {{.}}{{end}} has not pulsed since {{time .LastPulse}}; its pulse was due by {{time .Deadline}}.` +
			`{{if ne .Stage "notify"}} It has been down for {{duration .DownFor}}.{{end}}{{with .URL}}` + "\n" + `{{.}}{{end}}`,
	},
	"recovered": {
		Title: `{{.Service}} recovered`,
		Body: `{{.Service}}{{with .Host}} on {{.}}{{end}} is pulsing again after being down for {{duration .DownFor}}` +
			`{{if not .DownSince.IsZero}} (since {{time .DownSince}}){{end}}.{{with .URL}}` + "\n" + `{{.}}{{end}}`,
	},
	"gap":    {Title: `{{.Title}}`, Body: `{{.Message}}`},
	"manual": {Title: `{{.Title}}`, Body: `{{.Message}}{{with .Service}}` + "\n" + `Service: {{.}}{{end}}{{with .URL}}` + "\n" + `{{.}}{{end}}`},
	"group": {
		Title: `{{if eq .Stage "repeat"}}Still down: {{else if eq .Stage "escalate"}}Escalated: {{end}}{{len .Alerts}} services are down`,
		Body: `{{len .Alerts}} services stopped pulsing at {{time .At}}:` + "\n" +
			`{{range .Alerts}}- {{.Service}}{{with .Host}} on {{.}}{{end}}: last pulse {{time .LastPulse}}` + "\n" + `{{end}}{{with .URL}}{{.}}{{end}}`,
	},
	"watchtower_down": {
		Title: `Service {{.Service}} has not pulsed`,
		Body:  `The service {{.Service}} is not pulsing since {{localtime .LastPulse "20060102 15:04:05"}}`,
	},
	"watchtower_recovered": {
		Title: `Service {{.Service}} is pulsing again`,
		Body:  `The service {{.Service}} is pulsing again`,
	},
}

var funcs = template.FuncMap{
	// duration rounds to the second and prints Go's form: "3m12s", "1h0m5s".
	"duration": func(d time.Duration) string {
		if d < 0 {
			d = 0
		}
		return d.Round(time.Second).String()
	},
	// time prints t in UTC: "2006-01-02 15:04:05 UTC".
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	// localtime prints t in the server's time zone with a Go layout.
	"localtime": func(t time.Time, layout string) string { return t.Local().Format(layout) },
	"join":      strings.Join,
	"upper":     strings.ToUpper,
}

// templates are the parsed title and body templates by key.
type templates struct {
	title, body map[string]*template.Template
}

// parseTemplates parses the defaults overridden by over and executes each
// once on sample data, so a template that fails to parse or names a field
// Data lacks stops start-up. Errors name the key: templates.down.title.
func parseTemplates(over map[string]Template) (*templates, error) {
	for k := range over {
		if !slices.Contains(TemplateKeys, k) {
			return nil, fmt.Errorf("templates.%s: unknown key (want one of %s)", k, strings.Join(TemplateKeys, ", "))
		}
	}
	t := &templates{title: map[string]*template.Template{}, body: map[string]*template.Template{}}
	sample := sampleData()
	for _, k := range TemplateKeys {
		src := defaultTemplates[k]
		if o, ok := over[k]; ok {
			if o.Title != "" {
				src.Title = o.Title
			}
			if o.Body != "" {
				src.Body = o.Body
			}
		}
		for _, p := range []struct {
			part, src string
			into      map[string]*template.Template
		}{{"title", src.Title, t.title}, {"body", src.Body, t.body}} {
			name := "templates." + k + "." + p.part
			tp, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(p.src)
			if err != nil {
				return nil, err
			}
			if err := tp.Execute(&bytes.Buffer{}, sample); err != nil {
				return nil, err
			}
			p.into[k] = tp
		}
	}
	return t, nil
}

func sampleData() *Data {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := vigil.Alert{
		ID: "down:sample:1", Kind: vigil.AlertDown, Service: "sample", Title: "sample is down", Message: "sample",
		Level: vigil.LevelError, Host: "host", At: at, LastPulse: at.Add(-time.Minute), Deadline: at, DownSince: at,
	}
	return &Data{Alert: a, Alerts: []vigil.Alert{a}, Services: []string{a.Service}, Stage: StageNotify, Now: at}
}

// key picks the template for d: group for several alerts, the watchTower
// texts for down and recovered alerts of services that came through its
// protocol, else the alert's kind.
func (t *templates) key(d *Data) string {
	switch {
	case len(d.Alerts) > 1:
		return "group"
	case d.Origin == "watchtower" && (d.Kind == vigil.AlertDown || d.Kind == vigil.AlertRecovered):
		return "watchtower_" + string(d.Kind)
	case d.Kind == vigil.AlertRecovered, d.Kind == vigil.AlertGap, d.Kind == vigil.AlertManual:
		return string(d.Kind)
	}
	return "down"
}

// render returns the title and body for d. Titles are trimmed to one line.
func (t *templates) render(d *Data) (title, body string, err error) {
	k := t.key(d)
	var b bytes.Buffer
	if err := t.title[k].Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("render %s title: %w", k, err)
	}
	title = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.body[k].Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("render %s body: %w", k, err)
	}
	return title, strings.TrimSpace(b.String()), nil
}

// newData builds the template data for job j telling about alerts at now.
func newData(j *Job, alerts []vigil.Alert, now time.Time, externalURL string) *Data {
	d := &Data{Alert: alerts[0], Alerts: alerts, Stage: j.Stage, Step: j.Step, Now: now}
	switch {
	case len(alerts) > 1:
		for _, a := range alerts {
			d.Services = append(d.Services, a.Service)
		}
	case len(d.Alert.Services) > 0:
		d.Services = d.Alert.Services
	case d.Service != "":
		d.Services = []string{d.Service}
	}
	a := &d.Alert
	switch {
	case a.Kind == vigil.AlertRecovered && !a.DownSince.IsZero():
		end := a.LastPulse
		if end.IsZero() {
			end = a.At
		}
		d.DownFor = end.Sub(a.DownSince)
	case a.Kind == vigil.AlertDown && !a.Deadline.IsZero():
		d.DownFor = now.Sub(a.Deadline)
	}
	if externalURL != "" {
		base := strings.TrimSuffix(externalURL, "/")
		if len(alerts) == 1 && a.Service != "" {
			d.URL = base + "/v1/services/" + url.PathEscape(a.Service)
		} else if len(alerts) > 1 {
			d.URL = base + "/v1/services?status=down"
		}
	}
	return d
}
