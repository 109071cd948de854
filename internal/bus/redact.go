package bus

import (
	"net/url"
	"strings"
)

// redactURL hides user info in a comma-separated list of server URLs, so a
// password in --nats-url never reaches a log or an error.
func redactURL(list string) string {
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
