package main

import (
	"fmt"
	"maps"
	"time"

	"github.com/vigil-monitor/vigil/internal/flagconf"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/notifier/mail"
	"github.com/vigil-monitor/vigil/services/notifier/pushover"
	"github.com/vigil-monitor/vigil/services/notifier/webhook"
)

// NotifierConfig holds the notifier role's options (notifier.Config) and its
// channels. Mail is on when mail.host is set, Pushover when pushover.token
// is, webhooks when webhook.enabled is true; desktop toasts are always on.
// The secrets (mail.password, pushover.token, webhook.secret and the values
// of webhook.headers) are never logged.
type NotifierConfig struct {
	ExternalURL    string                       `yaml:"external_url"`
	Workers        int                          `yaml:"workers"`
	SendTimeout    time.Duration                `yaml:"send_timeout"`
	GroupThreshold int                          `yaml:"group_threshold"`
	GroupWait      time.Duration                `yaml:"group_wait"`
	Retry          notifier.Retry               `yaml:"retry"`
	Mail           mail.Config                  `yaml:"mail"`
	Pushover       pushover.Config              `yaml:"pushover"`
	Webhook        WebhookConfig                `yaml:"webhook"`
	Owner          notifier.Policy              `yaml:"owner"`
	Routes         []notifier.Route             `yaml:"routes"`
	Default        notifier.DefaultRoute        `yaml:"default"`
	Templates      map[string]notifier.Template `yaml:"templates"`
}

// WebhookConfig is webhook.Config plus the switch that turns the channel on:
// webhook targets come from whoever registers a service, so vigil calls
// none unless told to.
type WebhookConfig struct {
	Enabled        bool `yaml:"enabled"`
	webhook.Config `yaml:",inline"`
}

func defaultNotifierConfig() NotifierConfig {
	d := notifier.DefaultConfig()
	return NotifierConfig{
		Workers: d.Workers, SendTimeout: d.SendTimeout, GroupThreshold: d.GroupThreshold, GroupWait: d.GroupWait,
		Retry: d.Retry, Mail: mail.DefaultConfig(), Pushover: pushover.DefaultConfig(),
		Webhook: WebhookConfig{Config: webhook.DefaultConfig()},
	}
}

// notifier builds the notifier's configuration with its channels. Errors
// name the section at fault ("notifier.mail: from: is required").
func (c Config) notifier() (notifier.Config, error) {
	n := c.Notifier
	out := notifier.DefaultConfig()
	out.ExternalURL, out.Workers, out.SendTimeout = n.ExternalURL, n.Workers, n.SendTimeout
	out.GroupThreshold, out.GroupWait, out.Retry = n.GroupThreshold, n.GroupWait, n.Retry
	out.Owner, out.Routes, out.Default, out.Templates = n.Owner, n.Routes, n.Default, n.Templates
	if n.Mail.Host != "" {
		ch, err := mail.New(n.Mail)
		if err != nil {
			return out, fmt.Errorf("notifier.mail: %w", err)
		}
		out.Channels = append(out.Channels, ch)
	}
	if n.Pushover.Token != "" {
		ch, err := pushover.New(n.Pushover)
		if err != nil {
			return out, fmt.Errorf("notifier.pushover: %w", err)
		}
		out.Channels = append(out.Channels, ch)
	}
	if n.Webhook.Enabled {
		ch, err := webhook.New(n.Webhook.Config)
		if err != nil {
			return out, fmt.Errorf("notifier.webhook: %w", err)
		}
		out.Channels = append(out.Channels, ch)
	}
	return out, nil
}

// validateNotifier builds the notifier's configuration and validates it,
// so a bad channel, route or template stops start-up.
func (c Config) validateNotifier() error {
	n, err := c.notifier()
	if err != nil {
		return err
	}
	for _, ch := range n.Channels {
		if cl, ok := ch.(interface{ Close() error }); ok {
			_ = cl.Close() // nothing dialled yet
		}
	}
	return n.Validate()
}

// redacted returns n with its secrets replaced for logging.
func (n NotifierConfig) redacted() NotifierConfig {
	n.Mail.Password = flagconf.Redact(n.Mail.Password)
	n.Pushover.Token = flagconf.Redact(n.Pushover.Token)
	n.Webhook.Secret = flagconf.Redact(n.Webhook.Secret)
	if len(n.Webhook.Headers) > 0 {
		h := maps.Clone(n.Webhook.Headers)
		for k, v := range h {
			h[k] = flagconf.Redact(v)
		}
		n.Webhook.Headers = h
	}
	return n
}

// bindNotifier binds the notifier's flags. Routes, templates and the less
// common channel settings live in the YAML file only.
func bindNotifier(b *flagconf.Binder, n *NotifierConfig) {
	b.Group = "Notifier"
	b.Str(&n.ExternalURL, "external-url", "notifier.external_url", "vigil's address as users reach it (`URL`), for links in messages")
	b.Int(&n.Workers, "notifier-workers", "notifier.workers", "deliveries of one channel at once in this process")
	b.Dur(&n.SendTimeout, "notifier-send-timeout", "notifier.send_timeout", "bound on one delivery attempt")
	b.Int(&n.GroupThreshold, "notifier-group-threshold", "notifier.group_threshold", "more down alerts than this in one sweep are one message per receiver (0: never group)")
	b.Dur(&n.Retry.Initial, "notifier-retry-initial", "notifier.retry.initial", "first back-off after a transient failure (doubles each attempt)")
	b.Dur(&n.Retry.Max, "notifier-retry-max", "notifier.retry.max", "longest back-off between two attempts")
	b.Dur(&n.Retry.For, "notifier-retry-for", "notifier.retry.for", "how long a job is retried before it becomes a dead letter")
	b.Str(&n.Mail.Host, "notifier-smtp-host", "notifier.mail.host", "SMTP server `host`; set to send mail")
	b.Int(&n.Mail.Port, "notifier-smtp-port", "notifier.mail.port", "SMTP port (0: 587 for starttls, 465 for tls, 25 for none)")
	b.Str(&n.Mail.TLS, "notifier-smtp-tls", "notifier.mail.tls", "SMTP TLS: starttls, tls or none")
	b.Str(&n.Mail.From, "notifier-smtp-from", "notifier.mail.from", "sender `address` of vigil's mail")
	b.Str(&n.Mail.Username, "notifier-smtp-username", "notifier.mail.username", "SMTP AUTH user name")
	b.Secret(&n.Mail.Password, "notifier-smtp-password", "notifier.mail.password", "SMTP AUTH password (secret: never logged)")
	b.Secret(&n.Pushover.Token, "notifier-pushover-token", "notifier.pushover.token", "Pushover application API token; set to send Pushover messages (secret: never logged)")
	b.Bool(&n.Webhook.Enabled, "notifier-webhooks", "notifier.webhook.enabled", "call the webhook URLs that owners name")
	b.Secret(&n.Webhook.Secret, "notifier-webhook-secret", "notifier.webhook.secret", "HMAC-SHA256 key of X-Vigil-Signature (secret: never logged)")
	b.Bool(&n.Webhook.DenyPrivate, "notifier-webhook-deny-private", "notifier.webhook.deny_private",
		"also refuse webhook targets at private addresses (RFC 1918, 100.64.0.0/10, fc00::/7); loopback, link-local and metadata ones are refused anyway")
	b.Var(listFlag{&n.Webhook.AllowedNetworks}, "notifier-webhook-allowed-networks", "notifier.webhook.allowed_networks",
		"`CIDR prefixes` webhook targets may resolve to even though they are refused by default or by deny-private (127.0.0.0/8 for a receiver on this host), comma separated")
}

var _ channel.Channel = (*mail.Channel)(nil)
