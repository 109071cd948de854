package notifier

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

// Config holds the notifier's options. The YAML tags are the keys of the
// notifier section of vigil's configuration file.
type Config struct {
	// Channels are the configured delivery channels, at most one per type.
	// A toast channel (publishing on VIGIL_TOASTS) is added by New when
	// none is given, so "toast" is always configured.
	Channels []channel.Channel `yaml:"-"`
	// ExternalURL is vigil's address as users reach it
	// ("https://vigil.example.com"); messages link to
	// <ExternalURL>/v1/services/<name>. Empty: no link.
	ExternalURL string `yaml:"external_url"`
	// Owner is the repeat and escalation policy for the receiver an alert
	// names itself (Alert.Owner).
	Owner Policy `yaml:"owner"`
	// Routes add receivers to the alerts they match; every matching route
	// applies.
	Routes []Route `yaml:"routes"`
	// Default applies when no route matched.
	Default DefaultRoute `yaml:"default"`
	// Templates override the default message texts, by key: down,
	// recovered, gap, manual, group, watchtower_down, watchtower_recovered.
	Templates map[string]Template `yaml:"templates"`
	// GroupThreshold: the down alerts of one detection sweep are told in one
	// message per receiver, listing the services, when the sweep raised
	// more than GroupThreshold of them (default 5; 0 never groups).
	GroupThreshold int `yaml:"group_threshold"`
	// GroupWait is how long a grouped message waits, at most, for every
	// alert of its sweep to be stored before it goes out with those it has
	// (default 10 s).
	GroupWait time.Duration `yaml:"group_wait"`
	// Retry is the back-off schedule for transient failures.
	Retry Retry `yaml:"retry"`
	// SendTimeout bounds one attempt of one channel (default 30 s).
	SendTimeout time.Duration `yaml:"send_timeout"`
	// Workers is how many jobs each channel delivers at once in this
	// replica (default 16).
	Workers int `yaml:"workers"`
}

// Policy is what happens after the first notification of a down alert
// while the service stays down: Repeat re-notifies every Repeat (0: never)
// until the service recovers or is silenced; each Escalation step notifies
// more receivers once the service has been down for After.
type Policy struct {
	Repeat   time.Duration `yaml:"repeat"`
	Escalate []Escalation  `yaml:"escalate"`
}

// Escalation is one step of a Policy: After the down alert was raised, if
// the service is still down, Receivers are notified too.
type Escalation struct {
	After     time.Duration `yaml:"after"`
	Receivers []vigil.Owner `yaml:"receivers"`
}

// Route sends the alerts that Match to Receivers, with its Policy.
type Route struct {
	// Name identifies the route in the history: 1-64 of [A-Za-z0-9_-].
	Name      string        `yaml:"name"`
	Match     Match         `yaml:"match"`
	Receivers []vigil.Owner `yaml:"receivers"`
	Policy    `yaml:",inline"`
}

// DefaultRoute receives the alerts that no Route matched.
type DefaultRoute struct {
	Receivers []vigil.Owner `yaml:"receivers"`
	Policy    `yaml:",inline"`
}

// Match selects alerts. Every field that is set must match.
type Match struct {
	// Service is an RE2 regular expression matched against the whole
	// service name (anchored, as in Alertmanager: "db-.*", not "^db-").
	// An alert about no service (a gap alert, a manual alert without
	// service) has the name "".
	Service string `yaml:"service"`
	// Level is the minimum level: a name (debug, info, warning, error,
	// critical) or a number. A recovered alert is matched as its outage's
	// down alert was (error), so whoever was told of the outage hears of
	// its end.
	Level string `yaml:"level"`
	// Kinds limits the route to these alert kinds (down, recovered, gap,
	// manual); empty means all.
	Kinds []vigil.AlertKind `yaml:"kinds"`
}

// Template is a pair of text/template sources for a message's title and
// body. See docs/notifier.md for the data they see.
type Template struct {
	Title string `yaml:"title"`
	Body  string `yaml:"body"`
}

// DefaultConfig returns the notifier's defaults: no channels but toast, no
// routes, grouping above 5 alerts, the DefaultRetry schedule, 30 s per
// attempt and 16 workers per channel.
func DefaultConfig() Config {
	return Config{
		GroupThreshold: 5,
		GroupWait:      10 * time.Second,
		Retry:          DefaultRetry(),
		SendTimeout:    30 * time.Second,
		Workers:        16,
	}
}

// Validate reports the first invalid option: a channel type given twice,
// a route or receiver that is malformed or names a channel that is not
// configured, a regular expression or template that does not compile, or
// a non-positive limit. Errors name the option ("routes[2].match.service").
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// channelName is the shape of a channel type: it becomes a subject token
// and part of a consumer name.
var channelName = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

var routeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// compiled is a validated Config with its regular expressions, levels and
// templates ready to use.
type compiled struct {
	Config
	channels  map[string]channel.Channel
	routes    []route
	def       route
	owner     Policy
	templates *templates
}

type route struct {
	name      string
	service   *regexp.Regexp
	level     vigil.Level
	hasLevel  bool
	kinds     []vigil.AlertKind
	receivers []vigil.Owner
	policy    Policy
}

func compile(c Config) (*compiled, error) {
	switch {
	case c.GroupThreshold < 0:
		return nil, fmt.Errorf("group_threshold %d: must be >= 0", c.GroupThreshold)
	case c.GroupWait < 0:
		return nil, fmt.Errorf("group_wait %v: must be >= 0", c.GroupWait)
	case c.SendTimeout <= 0:
		return nil, fmt.Errorf("send_timeout %v: must be > 0", c.SendTimeout)
	case c.Workers <= 0:
		return nil, fmt.Errorf("workers %d: must be > 0", c.Workers)
	}
	if err := c.Retry.Validate(); err != nil {
		return nil, err
	}
	if c.ExternalURL != "" {
		if err := (&vigil.Owner{Type: vigil.ChannelWebhook, Target: c.ExternalURL}).Validate(); err != nil {
			return nil, fmt.Errorf("external_url %q: must be an absolute http or https URL", c.ExternalURL)
		}
	}
	out := &compiled{Config: c, channels: map[string]channel.Channel{}}
	for i, ch := range c.Channels {
		if ch == nil {
			return nil, fmt.Errorf("channels[%d]: nil channel", i)
		}
		t := ch.Type()
		if !channelName.MatchString(t) {
			return nil, fmt.Errorf("channels[%d]: type %q: want 1-32 of [a-z0-9] starting with a letter", i, t)
		}
		if _, dup := out.channels[t]; dup {
			return nil, fmt.Errorf("channels[%d]: a %s channel is configured twice", i, t)
		}
		out.channels[t] = ch
	}
	configured := func(t string) bool {
		_, ok := out.channels[t]
		return ok || t == vigil.ChannelToast
	}
	receivers := func(field string, in []vigil.Owner) ([]vigil.Owner, error) {
		rs := make([]vigil.Owner, 0, len(in))
		for i, o := range in {
			f := fmt.Sprintf("%s[%d]", field, i)
			if _, custom := out.channels[o.Type]; custom && !knownChannel(o.Type) {
				// A channel type outside vigil's four (given in code): its
				// target shape is its own business.
				if o.Target == "" || len(o.Target) > 512 {
					return nil, fmt.Errorf("%s.target: must be 1-512 bytes", f)
				}
			} else if err := o.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if !configured(o.Type) {
				return nil, fmt.Errorf("%s: channel %s is not configured", f, o.Type)
			}
			rs = append(rs, o)
		}
		return rs, nil
	}
	policy := func(field string, p Policy) (Policy, error) {
		if p.Repeat < 0 {
			return p, fmt.Errorf("%s.repeat %v: must be >= 0", field, p.Repeat)
		}
		out := Policy{Repeat: p.Repeat}
		for i, e := range p.Escalate {
			f := fmt.Sprintf("%s.escalate[%d]", field, i)
			if e.After <= 0 {
				return p, fmt.Errorf("%s.after %v: must be > 0", f, e.After)
			}
			if len(e.Receivers) == 0 {
				return p, fmt.Errorf("%s.receivers: at least one is required", f)
			}
			rs, err := receivers(f+".receivers", e.Receivers)
			if err != nil {
				return p, err
			}
			out.Escalate = append(out.Escalate, Escalation{After: e.After, Receivers: rs})
		}
		return out, nil
	}
	var err error
	if out.owner, err = policy("owner", c.Owner); err != nil {
		return nil, err
	}
	names := map[string]bool{"owner": true, "default": true}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		if !routeName.MatchString(r.Name) {
			return nil, fmt.Errorf("%s.name %q: want 1-64 of [A-Za-z0-9_-]", f, r.Name)
		}
		if names[r.Name] {
			return nil, fmt.Errorf("%s.name %q: used twice (owner and default are reserved)", f, r.Name)
		}
		names[r.Name] = true
		rt := route{name: r.Name}
		if r.Match.Service != "" {
			if rt.service, err = regexp.Compile("^(?:" + r.Match.Service + ")$"); err != nil {
				return nil, fmt.Errorf("%s.match.service: %w", f, err)
			}
		}
		if r.Match.Level != "" {
			if rt.level, err = vigil.ParseLevel(r.Match.Level); err != nil {
				return nil, fmt.Errorf("%s.match.level: %w", f, err)
			}
			rt.hasLevel = true
		}
		for j, k := range r.Match.Kinds {
			if !validKind(k) {
				return nil, fmt.Errorf("%s.match.kinds[%d] %q: want down, recovered, gap or manual", f, j, k)
			}
		}
		rt.kinds = r.Match.Kinds
		if len(r.Receivers) == 0 && len(r.Escalate) == 0 {
			return nil, fmt.Errorf("%s.receivers: at least one is required", f)
		}
		if rt.receivers, err = receivers(f+".receivers", r.Receivers); err != nil {
			return nil, err
		}
		if rt.policy, err = policy(f, r.Policy); err != nil {
			return nil, err
		}
		out.routes = append(out.routes, rt)
	}
	out.def = route{name: "default"}
	if out.def.receivers, err = receivers("default.receivers", c.Default.Receivers); err != nil {
		return nil, err
	}
	if out.def.policy, err = policy("default", c.Default.Policy); err != nil {
		return nil, err
	}
	if out.templates, err = parseTemplates(c.Templates); err != nil {
		return nil, err
	}
	return out, nil
}

func validKind(k vigil.AlertKind) bool {
	return slices.Contains([]vigil.AlertKind{vigil.AlertDown, vigil.AlertRecovered, vigil.AlertGap, vigil.AlertManual}, k)
}

// errNotConfigured marks a job for a channel this notifier has not got.
var errNotConfigured = errors.New("channel is not configured")

func knownChannel(t string) bool {
	switch t {
	case vigil.ChannelMail, vigil.ChannelPushover, vigil.ChannelWebhook, vigil.ChannelToast, "email":
		return true
	}
	return false
}
