package vigil

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// MaxNameLen is the longest service name accepted, in bytes of UTF-8.
const MaxNameLen = 256

// ValidateName reports whether name is a valid service name: valid UTF-8 of
// 1 to MaxNameLen bytes. Anything else is allowed (spaces, dots, "*", ">",
// emoji); Token makes every such name safe to use in a subject or KV key.
func ValidateName(name string) error {
	switch {
	case name == "":
		return Invalid("service", "is required")
	case len(name) > MaxNameLen:
		return Invalid("service", "is %d bytes, the limit is %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return Invalid("service", "is not valid UTF-8")
	}
	return nil
}

// Token maps a service name to the single subject token and KV key that stand
// for it on the bus. The encoding is collision-free and cannot inject subject
// syntax:
//
//   - a name made only of [A-Za-z0-9_-] that does not start with "_" is its own
//     token ("db-backup" → "db-backup");
//   - any other name is "_" followed by its unpadded base64url encoding
//     (RFC 4648 §5): "db.backup" → "_ZGIuYmFja3Vw", "my service" → "_bXkgc2VydmljZQ".
//
// The two forms are told apart by the leading "_", and both alphabets lie
// inside the characters NATS allows in a token and JetStream in a KV key, so no
// name can produce ".", "*", ">" or whitespace, or address another service.
func Token(name string) string {
	if isPlain(name) {
		return name
	}
	return "_" + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// NameFromToken inverts Token. It returns an error wrapping ErrInvalid when tok
// could not have been produced by Token for a valid name.
func NameFromToken(tok string) (string, error) {
	if tok == "" {
		return "", fmt.Errorf("empty token: %w", ErrInvalid)
	}
	if tok[0] != '_' {
		if !isPlain(tok) {
			return "", fmt.Errorf("token %q has characters outside [A-Za-z0-9_-]: %w", tok, ErrInvalid)
		}
		return tok, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok[1:])
	if err != nil {
		return "", fmt.Errorf("token %q: %w", tok, ErrInvalid)
	}
	name := string(b)
	if ValidateName(name) != nil || isPlain(name) {
		// A plain name has exactly one token, its own; refusing the encoded
		// alias keeps the mapping a bijection.
		return "", fmt.Errorf("token %q is not canonical: %w", tok, ErrInvalid)
	}
	return name, nil
}

func isPlain(s string) bool {
	if s == "" || s[0] == '_' || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
