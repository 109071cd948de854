package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/httpx"
)

// Realm is the realm of the WWW-Authenticate challenges.
const Realm = "vigil"

// Keyring holds the configured tokens, ready for Verify.
type Keyring struct {
	keys []key
}

type key struct {
	name   string
	sum    [sha256.Size]byte
	scopes scopeSet
}

// scopeSet is a bit set of scopes.
type scopeSet uint8

const (
	bitRead scopeSet = 1 << iota
	bitIngest
	bitWrite
)

func bit(s Scope) scopeSet {
	switch s {
	case ScopeRead:
		return bitRead
	case ScopeIngest:
		return bitIngest
	case ScopeWrite:
		return bitWrite
	}
	return 0
}

// covers reports whether a token with scopes set may do what need
// requires: write covers everything.
func (set scopeSet) covers(need Scope) bool { return set&(bit(need)|bitWrite) != 0 }

// NewKeyring validates tokens (ValidateTokens) and returns their keyring.
// It fails on an invalid token and on an empty list.
func NewKeyring(tokens []Token) (*Keyring, error) {
	if len(tokens) == 0 {
		return nil, errNoTokens
	}
	if err := ValidateTokens(tokens); err != nil {
		return nil, err
	}
	k := &Keyring{keys: make([]key, len(tokens))}
	for i, t := range tokens {
		k.keys[i].name = t.Name
		if _, err := hex.Decode(k.keys[i].sum[:], []byte(t.SHA256)); err != nil {
			return nil, fmt.Errorf("token %q: %w", t.Name, err) // checked by ValidateTokens
		}
		for _, s := range t.Scopes {
			k.keys[i].scopes |= bit(s)
		}
	}
	return k, nil
}

// Verify returns the index of the key whose hash is the SHA-256 of secret,
// or -1. It compares the hash with every key in constant time and never
// stops early, so its timing depends only on the number of keys, not on
// which key matched or how much of a hash did.
func (k *Keyring) Verify(secret string) int {
	sum := sha256.Sum256([]byte(secret))
	match := -1
	for i := range k.keys {
		eq := subtle.ConstantTimeCompare(sum[:], k.keys[i].sum[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	return match
}

// RequiredScope returns the scope a request with method and (escaped) path
// needs: ScopeRead for GET, HEAD and OPTIONS; ScopeIngest for the routes
// senders use (POST /v1/pulses, /v1/events, /v1/alerts,
// /v1/hosts/{id}/stats, DELETE /v1/services/{name}); ScopeWrite for
// everything else.
func RequiredScope(method, path string) Scope {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ScopeRead
	case http.MethodPost:
		switch path {
		case "/v1/pulses", "/v1/events", "/v1/alerts":
			return ScopeIngest
		}
		if id, ok := strings.CutPrefix(path, "/v1/hosts/"); ok {
			if id, ok := strings.CutSuffix(id, "/stats"); ok && id != "" && !strings.Contains(id, "/") {
				return ScopeIngest
			}
		}
	case http.MethodDelete:
		if name, ok := strings.CutPrefix(path, "/v1/services/"); ok && name != "" && !strings.Contains(name, "/") {
			return ScopeIngest
		}
	}
	return ScopeWrite
}

// Guard checks the bearer token of HTTP requests against a Keyring.
type Guard struct {
	keys   *Keyring
	log    *slog.Logger
	denied *prometheus.CounterVec
	// password is the WithPassword identity, nil without one.
	password *key
	csrfKey  []byte
}

// NewGuard returns a guard of tokens that logs denials on log and counts
// them on reg as vigil_http_auth_denied_total{reason} (reason: missing,
// invalid, scope or csrf), with opts applied. It fails like NewKeyring,
// when the counter cannot be registered, or when no random CSRF key can be
// drawn.
func NewGuard(tokens []Token, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Guard, error) {
	k, err := NewKeyring(tokens)
	if err != nil {
		return nil, err
	}
	denied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_http_auth_denied_total",
		Help: "HTTP requests refused by the API token check, by reason: missing (no bearer token or session), invalid (unknown token), scope (token lacks the scope), csrf (a session's change without a valid X-CSRF-Token).",
	}, []string{"reason"})
	if err := reg.Register(denied); err != nil {
		return nil, fmt.Errorf("auth metrics: %w", err)
	}
	for _, r := range []string{"missing", "invalid", "scope", "csrf"} {
		denied.WithLabelValues(r)
	}
	g := &Guard{keys: k, log: log, denied: denied}
	for _, o := range opts {
		o(g)
	}
	if g.csrfKey == nil {
		if g.csrfKey, err = newCSRFKey(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Handler wraps next so that each request needs a token with the scope
// RequiredScope gives for its method and path.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, RequiredScope(r.Method, r.URL.EscapedPath()), next)
	})
}

// Require wraps next so that each request needs a token with scope need,
// whatever its method.
func (g *Guard) Require(need Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, need, next)
	})
}

// serve answers 401 for a missing, malformed or unknown token and 403 for
// one without scope need, with an httpx.ErrorBody and the
// WWW-Authenticate challenge of RFC 6750 §3; otherwise it calls next with
// the identity in the context (FromContext, TokenName). The token is the
// bearer header's, else the session cookie's (CookieName); a session's
// unsafe request also needs a valid CSRFHeader (403 otherwise). Under
// GUIPrefix the login form, logout and static assets pass unchecked, and a
// page asked for without valid credentials is redirected to the login
// form (303).
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, need Scope, next http.Handler) {
	gui, public := guiPath(r.URL.Path)
	if public {
		next.ServeHTTP(w, r)
		return
	}
	toLogin := gui && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	secret, fromCookie, ok := credential(r)
	if !ok {
		g.denied.WithLabelValues("missing").Inc()
		if toLogin {
			http.Redirect(w, r, LoginRedirect(r.URL), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
		httpx.WriteJSON(w, http.StatusUnauthorized, httpx.ErrorBody{Error: "missing bearer token: send Authorization: Bearer <token>"})
		return
	}
	k, ok := g.identify(secret, fromCookie)
	if !ok {
		g.denied.WithLabelValues("invalid").Inc()
		g.log.Info("request with an invalid API token", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "session", fromCookie)
		if fromCookie {
			Logout(w, r) // a revoked token: drop the cookie
		}
		if toLogin {
			http.Redirect(w, r, LoginRedirect(r.URL), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token"`)
		httpx.WriteJSON(w, http.StatusUnauthorized, httpx.ErrorBody{Error: "invalid token"})
		return
	}
	if !k.scopes.covers(need) {
		g.denied.WithLabelValues("scope").Inc()
		g.log.Warn("API token lacks a scope", "token", k.name, "scope", string(need),
			"method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="insufficient_scope", scope="`+string(need)+`"`)
		httpx.WriteJSON(w, http.StatusForbidden, httpx.ErrorBody{Error: fmt.Sprintf("token %q lacks scope %s", k.name, need)})
		return
	}
	id := Identity{Name: k.name, scopes: k.scopes}
	if fromCookie {
		id.csrf = g.CSRFToken(secret)
		if unsafeMethod(r.Method) && !g.checkCSRF(secret, r.Header.Get(CSRFHeader)) {
			g.denied.WithLabelValues("csrf").Inc()
			g.log.Warn("session request without a valid CSRF token", "token", k.name,
				"method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
			httpx.WriteJSON(w, http.StatusForbidden, httpx.ErrorBody{Error: "missing or invalid " + CSRFHeader + " header: reload the page"})
			return
		}
	}
	ctx := context.WithValue(r.Context(), nameKey{}, k.name)
	next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, identityKey{}, id)))
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// value; the scheme is case-insensitive (RFC 7235 §2.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

type nameKey struct{}

// TokenName returns the name of the token that authenticated the request
// of ctx, or "" when the API runs without tokens.
func TokenName(ctx context.Context) string {
	s, _ := ctx.Value(nameKey{}).(string)
	return s
}
