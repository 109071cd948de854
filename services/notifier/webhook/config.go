package webhook

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// Config configures the webhook channel. The YAML keys are those of the
// webhook section of the notifier's configuration. Secret and the values of
// Headers are secrets: String and LogValue redact them.
type Config struct {
	// Secret is the HMAC-SHA256 key of X-Vigil-Signature. Empty sends no
	// signature, which leaves receivers unable to tell vigil's requests from
	// anyone else's; set it.
	Secret string `yaml:"secret"`
	// Method is POST (default) or PUT.
	Method string `yaml:"method"`
	// Headers are sent with every request ("Authorization: Bearer …"). They
	// cannot replace Content-Type, Content-Length, Host, Connection,
	// Transfer-Encoding or the X-Vigil-* headers.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration `yaml:"timeout"`
	// AllowedHosts, when not empty, limits targets to these host names:
	// "hooks.example.com" matches that host, "*.example.com" its
	// subdomains. Any other target fails permanently without a request.
	// Targets come from whoever registers a service, so set it where that
	// is not only you (server-side request forgery).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// DenyPrivate, when true, also refuses private addresses: RFC 1918
	// (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), shared address space
	// (100.64.0.0/10, RFC 6598, carrier-grade NAT) and unique local IPv6
	// (fc00::/7, RFC 4193). Loopback, link-local, unspecified, multicast
	// and cloud metadata addresses are refused whatever it says (see
	// CheckAddr).
	DenyPrivate bool `yaml:"deny_private"`
	// AllowedNetworks are CIDR prefixes ("127.0.0.0/8", "10.0.0.0/8",
	// "fd00::/8") or single addresses that may be called even though the
	// defaults or DenyPrivate refuse them: a receiver on the same host or in
	// the same private network. Both AllowedHosts (the name in the URL) and
	// the address check (the address connected to) apply.
	AllowedNetworks []string `yaml:"allowed_networks"`
	// HTTPClient, when set, sends the requests (tests, proxies) instead of
	// the default client. The default reuses connections, never follows
	// redirects, ignores HTTP_PROXY and friends (a proxy would connect to
	// the target itself, past the check), and checks every address it
	// connects to with CheckAddr at dial time, after DNS resolution, so
	// DNS rebinding and extra A/AAAA records cannot slip past it. A custom
	// client gets none of this: checking where it connects is the caller's
	// responsibility (its transport can dial with a net.Dialer whose
	// ControlContext calls CheckAddr on the address it is given).
	// AllowedHosts applies to either client.
	HTTPClient *http.Client `yaml:"-"`
}

// DefaultConfig returns the defaults: POST, 10 s timeout, any host name,
// and the default address check (CheckAddr) without deny_private or
// allowed_networks.
func DefaultConfig() Config {
	return Config{Method: http.MethodPost, Timeout: 10 * time.Second}
}

// reserved are the headers Headers may not set (canonical form).
var reserved = []string{"Content-Type", "Content-Length", "Host", "Connection", "Transfer-Encoding"}

// Validate reports the first invalid option as a *vigil.FieldError named
// after its YAML key. An empty Method and a zero Timeout mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Method != http.MethodPost && c.Method != http.MethodPut {
		return vigil.Invalid("method", "must be POST or PUT, not %q", c.Method)
	}
	for k, v := range c.Headers {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case !validHeaderName(k):
			return vigil.Invalid("headers", "%q is not a valid header name", k)
		case slices.Contains(reserved, ck) || strings.HasPrefix(ck, "X-Vigil-"):
			return vigil.Invalid("headers", "%s is set by vigil and cannot be configured", ck)
		case strings.ContainsAny(v, "\r\n\x00"):
			return vigil.Invalid("headers", "the value of %s must be one line", ck)
		}
	}
	if c.Timeout < 0 {
		return vigil.Invalid("timeout", "must not be negative (0 means 10s)")
	}
	for _, h := range c.AllowedHosts {
		name := strings.TrimPrefix(h, "*.")
		if name == "" || strings.ContainsAny(name, "/:@*? ") {
			return vigil.Invalid("allowed_hosts", "%q must be a host name or *.domain", h)
		}
	}
	for _, n := range c.AllowedNetworks {
		if _, err := parseNetwork(n); err != nil {
			return vigil.Invalid("allowed_networks", "%q is not a CIDR prefix (127.0.0.0/8, fd00::/8) or an IP address", n)
		}
	}
	return nil
}

// parseNetwork parses an allowed_networks entry: a CIDR prefix, masked, or
// one address as a single-address prefix. Zones are refused.
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Method = strings.ToUpper(c.Method)
	if c.Method == "" {
		c.Method = d.Method
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	return c
}

// allowed reports whether u's host may be called.
func (c Config) allowed(u *url.URL) bool {
	if len(c.AllowedHosts) == 0 {
		return true
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range c.AllowedHosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// String describes the configuration with the secret and header values
// redacted.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("webhook %s secret=%s headers=%v allowed_hosts=%v deny_private=%t allowed_networks=%v",
		c.Method, redact(c.Secret), c.headerNames(), c.AllowedHosts, c.DenyPrivate, c.AllowedNetworks)
}

// LogValue logs the configuration as a group with the secret and header
// values redacted.
func (c Config) LogValue() slog.Value {
	c = c.withDefaults()
	return slog.GroupValue(slog.String("method", c.Method), slog.String("secret", redact(c.Secret)),
		slog.Any("headers", c.headerNames()), slog.Any("allowed_hosts", c.AllowedHosts),
		slog.Bool("deny_private", c.DenyPrivate), slog.Any("allowed_networks", c.AllowedNetworks),
		slog.Duration("timeout", c.Timeout))
}

// headerNames lists the configured headers as "Name: REDACTED".
func (c Config) headerNames() []string {
	out := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		out = append(out, http.CanonicalHeaderKey(k)+": REDACTED")
	}
	slices.Sort(out)
	return out
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

// validHeaderName reports whether s is an RFC 9110 §5.6.2 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}
