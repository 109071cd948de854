// Package auth guards vigil's native HTTP API with bearer tokens
// (RFC 6750): each configured token has a name, the SHA-256 of its secret
// and a set of scopes; a request needs a token whose scopes cover the scope
// its method and path require (RequiredScope).
//
// Secrets are high-entropy random strings ("vgl_" and 32 random bytes in
// unpadded base64url, 256 bits), so one unsalted SHA-256 is enough to keep
// them unusable from a leaked configuration, as GitHub does for its tokens; a
// slow password hash (bcrypt, argon2) would only add work to every request.
// Verification hashes the presented secret and compares it with every
// configured hash in constant time (crypto/subtle), without stopping at a
// match.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Scope is what a token may do.
type Scope string

const (
	// ScopeRead allows GET and HEAD of every native route, the SSE stream
	// included.
	ScopeRead Scope = "read"
	// ScopeIngest allows only what senders need: POST /v1/pulses,
	// /v1/events, /v1/alerts and /v1/hosts/{id}/stats, and DELETE
	// /v1/services/{name}. It does not allow reads.
	ScopeIngest Scope = "ingest"
	// ScopeWrite allows everything, and so covers ScopeRead and ScopeIngest.
	ScopeWrite Scope = "write"
)

// Scopes lists every scope, least privileged first.
func Scopes() []Scope { return []Scope{ScopeRead, ScopeIngest, ScopeWrite} }

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(Scopes(), s) }

// Prefix starts every secret Generate makes, so secret scanners and people
// can tell a vigil token at a glance.
const Prefix = "vgl_"

// secretBytes is the entropy of a generated secret: 32 bytes, 256 bits.
const secretBytes = 32

// Generate returns a new secret: Prefix and 32 bytes read from rnd
// (crypto/rand.Reader when nil) in unpadded base64url, 47 characters in
// all. It fails only when rnd does.
func Generate(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, secretBytes)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the SHA-256 of secret in lowercase hex (64 characters): the
// form Token.SHA256 keeps.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Token is one configured API token: Name identifies it in logs and
// errors (never the secret), SHA256 is Hash of its secret, and Scopes are
// what it may do. In YAML:
//
//	auth:
//	  tokens:
//	    - name: ci
//	      sha256: 9f86d0…
//	      scopes: [read]
type Token struct {
	Name   string  `yaml:"name" json:"name"`
	SHA256 string  `yaml:"sha256" json:"sha256"`
	Scopes []Scope `yaml:"scopes" json:"scopes"`
}

// Validate checks that t has a name of 1–64 characters of [A-Za-z0-9._-],
// a SHA256 of 64 hex digits, and at least one known scope.
func (t Token) Validate() error {
	if !validName(t.Name) {
		return fmt.Errorf("token name %q: want 1-64 characters of A-Z a-z 0-9 . _ -", t.Name)
	}
	if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("token %q: sha256 must be 64 hex digits (the output of vigil token create)", t.Name)
	}
	if len(t.Scopes) == 0 {
		return fmt.Errorf("token %q: needs at least one scope (read, ingest or write)", t.Name)
	}
	for _, s := range t.Scopes {
		if !s.Valid() {
			return fmt.Errorf("token %q: unknown scope %q (read, ingest or write)", t.Name, s)
		}
	}
	return nil
}

// ValidateTokens validates every token and checks that names and hashes
// are unique.
func ValidateTokens(tokens []Token) error {
	names := make(map[string]bool, len(tokens))
	sums := make(map[string]string, len(tokens))
	for _, t := range tokens {
		if err := t.Validate(); err != nil {
			return err
		}
		if names[t.Name] {
			return fmt.Errorf("token name %q is used twice", t.Name)
		}
		names[t.Name] = true
		sum := strings.ToLower(t.SHA256)
		if other, ok := sums[sum]; ok {
			return fmt.Errorf("tokens %q and %q have the same sha256", other, t.Name)
		}
		sums[sum] = t.Name
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseTokens parses the compact form of a token list used by
// VIGIL_AUTH_TOKENS and --auth-tokens: entries NAME:SHA256:SCOPE[+SCOPE…]
// separated by commas or white space, as in
//
//	ci:9f86d0…:read,deployer:60303a…:read+write
//
// An empty or blank s is an empty list. It returns an error naming the
// entry at fault.
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	for i, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		parts := strings.Split(f, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("token entry %d: want NAME:SHA256:SCOPE[+SCOPE]", i+1)
		}
		t := Token{Name: parts[0], SHA256: parts[1]}
		for sc := range strings.SplitSeq(parts[2], "+") {
			t.Scopes = append(t.Scopes, Scope(sc))
		}
		out = append(out, t)
	}
	if err := ValidateTokens(out); err != nil {
		return nil, err
	}
	return out, nil
}

// FormatTokens returns tokens in the compact form ParseTokens reads.
func FormatTokens(tokens []Token) string {
	var b strings.Builder
	for i, t := range tokens {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Name)
		b.WriteByte(':')
		b.WriteString(t.SHA256)
		b.WriteByte(':')
		for j, s := range t.Scopes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(string(s))
		}
	}
	return b.String()
}

// errNoTokens is returned by NewKeyring for an empty list: a guard that
// lets nobody in is a configuration mistake, not a setting.
var errNoTokens = errors.New("no tokens")
