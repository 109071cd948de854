package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Browser sessions: the web pages (/gui, services/api/web) log in with a
// token, or with the legacy watchTower password, and keep it in a cookie
// the guard accepts in place of the bearer header. Requests authenticated
// by the cookie that change something (POST, PUT, PATCH, DELETE) must also
// carry header CSRFHeader: an HMAC-SHA256 of the session under the guard's
// CSRF key, which the pages embed (double submit, OWASP CSRF cheat sheet
// "signed double-submit cookie").

// CookieName is the session cookie: the secret (token or password) in
// unpadded base64url, HttpOnly, SameSite=Strict, Path=/, Secure when the
// login request came over TLS.
const CookieName = "vigil_session"

// CSRFHeader is the header of the CSRF token that cookie-authenticated
// unsafe requests need (CSRFToken).
const CSRFHeader = "X-CSRF-Token"

// GUIPrefix is the path prefix of the web pages. Under it the guard answers
// a request without credentials with a redirect to LoginPath instead of a
// 401, and lets LoginPath, LogoutPath and StaticPrefix through unchecked.
const (
	GUIPrefix    = "/gui"
	LoginPath    = "/gui/login"
	LogoutPath   = "/gui/logout"
	StaticPrefix = "/gui/static/"
)

// SessionTTL is the lifetime of the session cookie: 7 days, so a wall
// screen does not need a login every morning.
const SessionTTL = 7 * 24 * time.Hour

// ErrInvalidSecret is returned by Login for a token or password no key
// matches.
var ErrInvalidSecret = errors.New("invalid token or password")

// ErrNoRead is returned by Login for a token that may not read (an ingest
// token): the pages would show nothing.
var ErrNoRead = errors.New("this token lacks scope read: the pages need a read or write token")

// Option configures a Guard.
type Option func(*Guard)

// WithPassword admits password (the legacy watchTower password) at the
// login form as identity name with scope write. It is accepted only from
// the session cookie, never as a bearer token, so it opens the pages and
// their actions but not the API for scripts. An empty password adds
// nothing.
func WithPassword(name, password string) Option {
	return func(g *Guard) {
		if password == "" {
			return
		}
		g.password = &key{name: name, sum: sha256.Sum256([]byte(password)), scopes: bitWrite}
	}
}

// WithCSRFKey sets the key of the CSRF tokens (at least 32 bytes; shorter
// keys are ignored). Without it each guard draws a random key, so pages
// served by one process are valid only there: replicas behind one address
// need the same key.
func WithCSRFKey(k []byte) Option {
	return func(g *Guard) {
		if len(k) >= 32 {
			g.csrfKey = append([]byte(nil), k...)
		}
	}
}

// Identity is who made a request: a token's name and scopes, or the
// password identity of WithPassword.
type Identity struct {
	Name   string
	scopes scopeSet
	// csrf is the CSRF token of a cookie session, "" for a bearer token.
	csrf string
}

// Can reports whether the identity may do what scope s requires.
func (id Identity) Can(s Scope) bool { return id.scopes.covers(s) }

// Session reports whether the request was authenticated by the session
// cookie (and so needs CSRFHeader to change anything).
func (id Identity) Session() bool { return id.csrf != "" }

// CSRF returns the CSRF token of a cookie session, for the page to send
// back in CSRFHeader; "" for a bearer token.
func (id Identity) CSRF() string { return id.csrf }

type identityKey struct{}

// FromContext returns the identity the guard put in ctx; false when the
// API runs without tokens (or the request did not pass a guard).
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Login checks secret (a token, or the WithPassword password) and sets the
// session cookie on w. It returns the identity, ErrInvalidSecret for an
// unknown secret, or ErrNoRead for a token without read scope. It never
// logs the secret.
func (g *Guard) Login(w http.ResponseWriter, r *http.Request, secret string) (Identity, error) {
	secret = strings.TrimSpace(secret)
	k, ok := g.identify(secret, true)
	if !ok {
		g.denied.WithLabelValues("invalid").Inc()
		g.log.Info("login with an invalid token or password", "remote_addr", r.RemoteAddr)
		return Identity{}, ErrInvalidSecret
	}
	if !k.scopes.covers(ScopeRead) {
		g.denied.WithLabelValues("scope").Inc()
		return Identity{}, ErrNoRead
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    base64.RawURLEncoding.EncodeToString([]byte(secret)),
		Path:     "/",
		MaxAge:   int(SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	g.log.Info("login", "token", k.name, "remote_addr", r.RemoteAddr)
	return Identity{Name: k.name, scopes: k.scopes, csrf: g.CSRFToken(secret)}, nil
}

// Logout clears the session cookie.
func Logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// CSRFToken returns the CSRF token of session secret: HMAC-SHA256 under the
// guard's key, in unpadded base64url (43 characters).
func (g *Guard) CSRFToken(secret string) string {
	m := hmac.New(sha256.New, g.csrfKey)
	m.Write([]byte("vigil csrf\x00"))
	m.Write([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF compares got with the CSRF token of secret in constant time.
func (g *Guard) checkCSRF(secret, got string) bool {
	want := g.CSRFToken(secret)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// identify returns the key of secret: a configured token, or, when
// fromCookie, the WithPassword identity. Every comparison runs in constant
// time and always runs.
func (g *Guard) identify(secret string, fromCookie bool) (*key, bool) {
	if secret == "" {
		return nil, false
	}
	i := g.keys.Verify(secret)
	pw := 0
	if g.password != nil {
		sum := sha256.Sum256([]byte(secret))
		pw = subtle.ConstantTimeCompare(sum[:], g.password.sum[:])
	}
	switch {
	case i >= 0:
		return &g.keys.keys[i], true
	case pw == 1 && fromCookie:
		return g.password, true
	}
	return nil, false
}

// credential returns the request's secret: the bearer token, else the
// session cookie's (fromCookie).
func credential(r *http.Request) (secret string, fromCookie, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		s, ok := bearer(h)
		return s, false, ok
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return "", false, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) == 0 {
		return "", true, false
	}
	return string(b), true, true
}

// newCSRFKey draws a random 32-byte key.
func newCSRFKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("csrf key: %w", err)
	}
	return k, nil
}

// unsafeMethod reports whether method may change something (RFC 9110
// §9.2.1: not GET, HEAD, OPTIONS or TRACE).
func unsafeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// guiPath reports whether path is under GUIPrefix, and whether it is one
// of the paths that need no credentials (the login form, logout, the
// static assets).
func guiPath(path string) (gui, public bool) {
	if path != GUIPrefix && !strings.HasPrefix(path, GUIPrefix+"/") {
		return false, false
	}
	return true, path == LoginPath || path == LogoutPath || strings.HasPrefix(path, StaticPrefix)
}

// LoginRedirect returns LoginPath with ?next= set to the path and query of
// u, for the page to come back to after the login.
func LoginRedirect(u *url.URL) string {
	return LoginPath + "?next=" + url.QueryEscape(u.RequestURI())
}

// SafeNext returns next when it is a path under GUIPrefix (not a
// scheme-relative "//host" or an absolute URL, which would make the login
// form an open redirect), else GUIPrefix + "/".
func SafeNext(next string) string {
	if (next == GUIPrefix || strings.HasPrefix(next, GUIPrefix+"/")) && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return GUIPrefix + "/"
}
