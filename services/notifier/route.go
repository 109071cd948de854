package notifier

import (
	"time"

	"github.com/vigil-monitor/vigil"
)

// Stage says why a job exists: the first notification of an alert, a
// repeat while its service stays down, or an escalation step.
type Stage string

// The stages of a delivery job.
const (
	StageNotify   Stage = "notify"
	StageRepeat   Stage = "repeat"
	StageEscalate Stage = "escalate"
)

// spec is one receiver of an alert as the routing decides it: where to send
// (channel, target), because of which route, at which stage, and when.
type spec struct {
	stage   Stage
	route   string
	step    int           // escalation step, 1-based; 0 otherwise
	after   time.Duration // escalation delay after the alert
	repeat  time.Duration // notify: repeat interval while down (0: none)
	channel string
	target  string
}

type receiverKey struct{ channel, target string }

// plan routes alert a: the owner first, then every matching route (or the
// default route when none matched), each receiver once. For down alerts it
// adds the escalation steps of the same routes, each receiver once and only
// if it is not already told at once. It is a pure function of the
// configuration and the alert.
func (c *compiled) plan(a *vigil.Alert) []spec {
	var out []spec
	seen := map[receiverKey]int{}
	add := func(route string, o vigil.Owner, repeat time.Duration) {
		k := receiverKey{o.Type, o.Target}
		if i, ok := seen[k]; ok {
			if repeat > 0 && (out[i].repeat == 0 || repeat < out[i].repeat) {
				out[i].repeat = repeat
			}
			return
		}
		seen[k] = len(out)
		out = append(out, spec{stage: StageNotify, route: route, repeat: repeat, channel: o.Type, target: o.Target})
	}
	down := a.Kind == vigil.AlertDown
	var policies []struct {
		route string
		p     Policy
	}
	pol := func(route string, p Policy) {
		if down {
			policies = append(policies, struct {
				route string
				p     Policy
			}{route, p})
		}
	}
	repeat := func(p Policy) time.Duration {
		if down {
			return p.Repeat
		}
		return 0
	}
	if a.Owner != nil && a.Owner.Target != "" {
		o := *a.Owner
		if o.Type == "email" {
			o.Type = vigil.ChannelMail
		}
		add("owner", o, repeat(c.owner))
		pol("owner", c.owner)
	}
	matched := false
	for i := range c.routes {
		r := &c.routes[i]
		if !r.matches(a) {
			continue
		}
		matched = true
		for _, o := range r.receivers {
			add(r.name, o, repeat(r.policy))
		}
		pol(r.name, r.policy)
	}
	if !matched {
		for _, o := range c.def.receivers {
			add(c.def.name, o, repeat(c.def.policy))
		}
		pol(c.def.name, c.def.policy)
	}
	// Escalations: the earliest step wins for a receiver named twice.
	esc := map[receiverKey]int{}
	for _, rp := range policies {
		for i, e := range rp.p.Escalate {
			for _, o := range e.Receivers {
				k := receiverKey{o.Type, o.Target}
				if _, now := seen[k]; now {
					continue
				}
				s := spec{stage: StageEscalate, route: rp.route, step: i + 1, after: e.After, channel: o.Type, target: o.Target}
				if j, ok := esc[k]; ok {
					if e.After < out[j].after {
						out[j] = s
					}
					continue
				}
				esc[k] = len(out)
				out = append(out, s)
			}
		}
	}
	return out
}

// matches reports whether the route selects a.
func (r *route) matches(a *vigil.Alert) bool {
	if r.service != nil && !r.service.MatchString(a.Service) {
		return false
	}
	if r.hasLevel {
		l := a.Level
		if a.Kind == vigil.AlertRecovered && l < vigil.LevelError {
			l = vigil.LevelError
		}
		if l < r.level {
			return false
		}
	}
	if len(r.kinds) > 0 {
		ok := false
		for _, k := range r.kinds {
			ok = ok || k == a.Kind
		}
		return ok
	}
	return true
}
