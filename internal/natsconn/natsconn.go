// Package natsconn is how every vigil program authenticates to NATS and
// checks the server: the credential and TLS options shared by the server
// roles (internal/bus) and vigil-agent. It links nats.go only, never the
// NATS server, so the agent can use it and stay small.
package natsconn

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Auth holds the credentials and TLS files of a NATS connection. Every
// field is optional; Password and Token are secrets and never logged.
type Auth struct {
	// CredsFile is a NATS credentials file (JWT + nkey seed).
	CredsFile string
	// NKeyFile is an nkey seed file.
	NKeyFile string
	// User and Password authenticate with a user name.
	User, Password string
	// Token authenticates with a server token.
	Token string
	// TLSCA, TLSCert and TLSKey are PEM files for TLS: the CA that signed the
	// server, and a client certificate and key for mutual TLS.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces "_INBOX" as the prefix of reply subjects
	// (RoleInbox, HostInbox, ToastInbox), so a least-privilege identity may
	// subscribe to its own replies only.
	InboxPrefix string
}

// Options returns the nats.go options that present a's credentials and
// check the server with a's CA. It fails when the nkey seed file cannot be
// read; a credentials or TLS file that cannot be read fails at connect.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey file: %w", err)
		}
		opts = append(opts, o)
	}
	if a.User != "" {
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.Token != "" {
		opts = append(opts, nats.Token(a.Token))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" || a.TLSKey != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	if a.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.InboxPrefix))
	}
	return opts, nil
}

// RedactURL hides the user info of every URL in a comma-separated list of
// server URLs ("nats://u:p@h:4222" → "nats://REDACTED@h:4222"), so a
// password in a NATS URL never reaches a log or an error. It works on the
// text, not on url.Parse: a URL that does not parse (a bad escape in the
// password) must not leak either. Everything before the last "@" of a part
// is user info.
func RedactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			scheme, rest = "", p
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue
		}
		if ok {
			scheme += "://"
		}
		parts[i] = scheme + "REDACTED" + rest[at:]
	}
	return strings.Join(parts, ",")
}
