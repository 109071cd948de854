package auth

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzGuard sends requests with fuzzed methods, paths, Authorization
// headers, session cookies and CSRF headers through a real Guard with a
// read token, a write token and the watchTower password login. Properties:
// no panic; a request reaches the handler only on a public GUI path or
// carrying a configured secret (as the bearer token, or base64url in the
// session cookie), with a scope that covers what the route needs, and a
// cookie session's unsafe request only with the CSRF token of its secret;
// otherwise the answer is 401, 403 or a 303 to the login form. It also
// checks that the compact token list round-trips (ParseTokens,
// FormatTokens) and that SafeNext never leaves the GUI.
func FuzzGuard(f *testing.F) {
	const readSecret, writeSecret, password = "vgl_read-secret-0123456789", "vgl_write-secret-0123456789", "wt-password"
	tokens := []Token{
		{Name: "reader", SHA256: Hash(readSecret), Scopes: []Scope{ScopeRead}},
		{Name: "admin", SHA256: Hash(writeSecret), Scopes: []Scope{ScopeWrite}},
	}
	g, err := NewGuard(tokens, slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		WithPassword("watchtower", password), WithCSRFKey([]byte(strings.Repeat("k", 32))))
	if err != nil {
		f.Fatal(err)
	}
	cookie := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range [][5]string{
		{"GET", "/v1/services", "Bearer " + readSecret, "", ""},
		{"POST", "/v1/pulses", "Bearer " + readSecret, "", ""},
		{"POST", "/v1/silences", "bearer  " + writeSecret + " ", "", ""},
		{"GET", "/gui/", "", cookie(password), ""},
		{"POST", "/v1/silences", "", cookie(password), g.CSRFToken(password)},
		{"DELETE", "/v1/silences/x", "", cookie(writeSecret), "nope"},
		{"GET", "/gui/static/app.js", "", "", ""},
		{"GET", "/gui/login", "Basic dXNlcjpwYXNz", "", ""},
		{"GET", "/v1/services", "Bearer " + password, "", ""},
		{"POST", "/v1/hosts/a/stats", "", "%%%", ""},
		{"GET", "/v1/services", "Bearer", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], "/gui/x?y=1")
	}
	secrets := []string{readSecret, writeSecret, password}
	f.Fuzz(func(t *testing.T, method, path, authz, cookieValue, csrf, next string) {
		switch method {
		case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH":
		default:
			method = "GET"
		}
		r := httptest.NewRequestWithContext(context.Background(), method, "http://vigil.test/", nil)
		r.URL.Path = "/" + strings.TrimPrefix(path, "/")
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		if cookieValue != "" {
			r.Header["Cookie"] = []string{CookieName + "=" + cookieValue}
		}
		if csrf != "" {
			r.Header[CSRFHeader] = []string{csrf}
		}
		var reached *http.Request
		w := httptest.NewRecorder()
		g.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { reached = r })).ServeHTTP(w, r)
		_, _ = io.Copy(io.Discard, w.Body)
		if reached == nil {
			switch w.Code {
			case http.StatusUnauthorized, http.StatusForbidden, http.StatusSeeOther:
			default:
				t.Fatalf("%s %s refused with %d, want 401, 403 or 303", method, r.URL.Path, w.Code)
			}
		} else if _, public := guiPath(r.URL.Path); !public {
			id, ok := FromContext(reached.Context())
			carried := false
			for _, s := range secrets {
				carried = carried || strings.Contains(authz, s) || strings.Contains(cookieValue, cookie(s)[:len(cookie(s))-1])
			}
			if !ok || !carried {
				t.Fatalf("%s %s with Authorization %q, cookie %q passed as %+v without a configured secret", method, r.URL.Path, authz, cookieValue, id)
			}
			if !id.Can(RequiredScope(method, r.URL.EscapedPath())) {
				t.Fatalf("%s %s passed as %q, which lacks the scope", method, r.URL.Path, id.Name)
			}
			if id.Session() && unsafeMethod(method) && !g.checkCSRF(secretOf(t, cookieValue), csrf) {
				t.Fatalf("%s %s passed on a session without its CSRF token", method, r.URL.Path)
			}
		}
		if got := SafeNext(next); got != GUIPrefix && !strings.HasPrefix(got, GUIPrefix+"/") {
			t.Fatalf("SafeNext(%q) = %q, outside %s", next, got, GUIPrefix)
		}
		if toks, err := ParseTokens(authz); err == nil {
			back, err := ParseTokens(FormatTokens(toks))
			if err != nil || FormatTokens(back) != FormatTokens(toks) {
				t.Fatalf("ParseTokens(FormatTokens(%q)) = %v, %v", FormatTokens(toks), back, err)
			}
		}
	})
}

func secretOf(t *testing.T, cookieValue string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(cookieValue)
	if err != nil {
		t.Fatalf("a session passed with the undecodable cookie %q", cookieValue)
	}
	return string(b)
}
