package bus

import (
	"net/url"
	"strings"
)

// RedactURL hides the user info of every URL in a comma-separated list of
// server URLs ("nats://u:p@h:4222" → "nats://REDACTED@h:4222"), so a password
// in --nats-url never reaches a log or an error.
func RedactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		u.User = url.User("REDACTED")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
