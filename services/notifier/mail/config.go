package mail

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"os"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// TLS modes of Config.TLS.
const (
	// TLSStartTLS connects in clear text and upgrades with STARTTLS (RFC
	// 3207) before anything else is sent; a server that does not offer
	// STARTTLS is an error, never a silent downgrade. Default port 587
	// (submission, RFC 6409).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (RFC 8314 §3.3). Default
	// port 465 (submissions).
	TLSImplicit = "tls"
	// TLSNone sends everything in clear text. It is meant for a relay on
	// the same host (127.0.0.1, ::1, localhost) or a development sink; with
	// a username it is refused for any other host, as the password would
	// cross the network in clear. Default port 25.
	TLSNone = "none"
)

// Config configures the SMTP channel. The YAML keys are those of the mail
// section of the notifier's configuration. Password is a secret: String and
// LogValue redact it, and no error carries it.
type Config struct {
	// Host is the SMTP server's name or IP address (required).
	Host string `yaml:"host"`
	// Port is its TCP port; 0 means the TLS mode's default (587, 465, 25).
	Port int `yaml:"port"`
	// TLS is "starttls" (default), "tls" or "none"; see the TLS* constants.
	TLS string `yaml:"tls"`
	// CAFile is a PEM file of CA certificates to trust instead of the
	// system's, for a relay with a private CA. Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// Username and Password enable AUTH PLAIN (RFC 4954, RFC 4616); both or
	// neither must be set.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// From is the sender, an RFC 5322 address with an optional display name
	// ("vigil <vigil@example.com>"); its domain also names the Message-IDs.
	From string `yaml:"from"`
	// HELO is the name sent with EHLO; empty means the host name.
	HELO string `yaml:"helo"`
	// Timeout bounds connecting and each SMTP command (default 30 s). The
	// context of Send bounds the whole delivery as well.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConnections is how many SMTP sessions the channel keeps open and
	// uses at once (default 2, at most 100). Each session carries one
	// message at a time and many messages one after another.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout: a session unused for longer is closed (QUIT) instead of
	// reused, well before servers drop idle clients (RFC 5321 §4.5.3.2.7
	// gives them 5 minutes). Default 30 s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// RootCAs, when set, is trusted instead of CAFile and the system roots.
	// It is for programs that embed the channel and for tests; YAML uses
	// CAFile.
	RootCAs *x509.CertPool `yaml:"-"`
}

// DefaultConfig returns the defaults: STARTTLS, 30 s timeout, 2 sessions,
// 30 s idle timeout. Host and From must still be set.
func DefaultConfig() Config {
	return Config{TLS: TLSStartTLS, Timeout: 30 * time.Second, MaxConnections: 2, IdleTimeout: 30 * time.Second}
}

// Validate reports the first invalid option as a *vigil.FieldError named
// after its YAML key ("host", "from", "tls", ...). Zero Port, Timeout,
// MaxConnections and IdleTimeout and an empty TLS are valid and mean the
// defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Host == "":
		return vigil.Invalid("host", "is required")
	case strings.ContainsAny(c.Host, " /:@") && net.ParseIP(c.Host) == nil:
		return vigil.Invalid("host", "must be a host name or IP address without port (%q)", c.Host)
	case c.Port < 1 || c.Port > 65535:
		return vigil.Invalid("port", "must be 1..65535")
	}
	switch c.TLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if c.Username != "" && !isLoopback(c.Host) {
			return vigil.Invalid("tls", `"none" with a username would send the password in clear text to %s; use starttls or tls`, c.Host)
		}
	default:
		return vigil.Invalid("tls", "must be starttls, tls or none, not %q", c.TLS)
	}
	if (c.Username == "") != (c.Password == "") {
		return vigil.Invalid("password", "username and password must be set together")
	}
	if c.From == "" {
		return vigil.Invalid("from", "is required")
	}
	if _, err := netmail.ParseAddress(c.From); err != nil {
		return vigil.Invalid("from", "must be an RFC 5322 address like \"vigil <vigil@example.com>\": %v", err)
	}
	switch {
	case c.Timeout < 0:
		return vigil.Invalid("timeout", "must not be negative (0 means 30s)")
	case c.IdleTimeout < 0:
		return vigil.Invalid("idle_timeout", "must not be negative (0 means 30s)")
	case c.MaxConnections < 1 || c.MaxConnections > 100:
		return vigil.Invalid("max_connections", "must be 1..100 (0 means 2)")
	}
	if c.CAFile != "" && c.RootCAs == nil {
		if _, err := loadCA(c.CAFile); err != nil {
			return vigil.Invalid("ca_file", "%v", err)
		}
	}
	return nil
}

// withDefaults fills the zero values that mean a default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.TLS == "" {
		c.TLS = d.TLS
	}
	c.TLS = strings.ToLower(c.TLS)
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	return c
}

// String describes the configuration with the password redacted.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("smtp %s:%d tls=%s from=%q user=%q password=%s", c.Host, c.Port, c.TLS, c.From, c.Username, redact(c.Password))
}

// LogValue logs the configuration as a group with the password redacted.
func (c Config) LogValue() slog.Value {
	c = c.withDefaults()
	return slog.GroupValue(
		slog.String("host", c.Host), slog.Int("port", c.Port), slog.String("tls", c.TLS),
		slog.String("from", c.From), slog.String("username", c.Username),
		slog.String("password", redact(c.Password)), slog.Int("max_connections", c.MaxConnections),
	)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
